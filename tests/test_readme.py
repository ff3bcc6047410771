"""The README's Python example runs as written (on synthetic parts standing in for LAION's)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from laionsearch import SynthSpec, synth_parts

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no Python example"
    synth_parts(tmp_path / "laion400m", [0, 1], SynthSpec(rows=500))
    proc = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ingested 2 part(s), 1,000 rows" in proc.stdout
    assert "[{'n': 1000}]" in proc.stdout

"""The encoder side of ``encode_text``/``encode_image`` as executable UDFs of a ClickHouse server.

``laionsearch udf export DIR`` writes, for the server, ``user_scripts/encode_text.py``
and ``encode_image.py`` (two-line scripts calling ``serve`` below with the venv's
Python) and the ``*_function.xml`` configs. Improvements over the guide's
scripts: ``executable_pool`` (the model is loaded once per worker process, not per
query), whole chunks encoded as one batch (``send_chunk_header``), normalised
output, and the same encoder code as the rest of laionsearch.

Protocol (TabSeparated with ``send_chunk_header``): a line with the row count
N, then N lines, each one escaped value; the answer is N lines, each an array
``[x1,x2,...]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from .sqlfunctions import unescape

def serve(kind: str, model: str | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """Answer chunks on ``stdin`` until it closes (one worker of an executable_pool)."""
    from .encoders import get_encoder

    encoder = get_encoder(model)
    while header := stdin.readline():
        if not header.strip():
            continue
        values = [unescape(stdin.readline().rstrip("\n")) for _ in range(int(header))]
        vectors = encoder.encode_texts(values) if kind == "text" else encoder.encode_images(values)
        for vector in vectors:
            stdout.write("[" + ",".join(map(repr, vector.tolist())) + "]\n")
        stdout.flush()


SCRIPT = '''#!{python}
# encode_{kind} for a ClickHouse server, written by `laionsearch udf export`.
import os

# The server's user reads the model's ONNX copy that `udf export` made (or uses torch: runtime "torch").
os.environ.setdefault("LAIONSEARCH_CACHE", {cache!r})
os.environ.setdefault("LAIONSEARCH_CLIP_RUNTIME", {runtime!r})
from laionsearch.clip.udfserver import serve

serve("{kind}", model={model!r})
'''

CONFIG = """<functions>
    <function>
        <type>executable_pool</type>
        <name>encode_{kind}</name>
        <return_type>Array(Float32)</return_type>
        <argument>
            <type>String</type>
            <name>{argument}</name>
        </argument>
        <format>TabSeparated</format>
        <command>encode_{kind}.py</command>
        <send_chunk_header>1</send_chunk_header>
        <pool_size>{pool_size}</pool_size>
        <command_read_timeout>600000</command_read_timeout>
        <command_write_timeout>600000</command_write_timeout>
        <max_command_execution_time>600</max_command_execution_time>
    </function>
</functions>
"""

README = """# encode_text / encode_image for a ClickHouse server

Written by `laionsearch udf export` with model `{model}` and Python `{python}`.

1. Copy `user_scripts/encode_text.py` and `user_scripts/encode_image.py` into the
   server's `user_scripts/` folder (`<user_scripts_path>` in its config, by default
   `/var/lib/clickhouse/user_scripts/`) and keep them executable. They run with the
   Python above, which must have `laionsearch[clip]` installed and the model
   available (downloaded once into the Hugging Face cache, or a saved folder). With
   the `{runtime}` runtime{converted}; the server's user must be able to read it.
2. Copy `encode_text_function.xml` and `encode_image_function.xml` to a folder named
   by `<user_defined_executable_functions_config>` in the server config, e.g.
   `<user_defined_executable_functions_config>/etc/clickhouse-server/*_function.xml</user_defined_executable_functions_config>`,
   then `SYSTEM RELOAD FUNCTIONS` (or restart).
3. Check: `SELECT length(encode_text('cat'))` gives 512.

Both are `executable_pool` functions: each worker loads the model once and encodes
each chunk of rows as one batch. `encode_image` takes a path on the server (or an
http(s) URL).

## The fast query form

Written directly inside `ORDER BY`, an executable UDF is called for every row and
the vector index is not used. Compute the vector once, as a scalar subquery:

```sql
WITH (SELECT encode_text('a dog and a cat')) AS target
SELECT url, caption FROM laion
ORDER BY cosineDistance(image_embedding, target) ASC
LIMIT 10
```

(In laionsearch's own store, `laionsearch sql` rewrites the guide's direct form to
this automatically.)
"""


def export_udfs(folder: str | Path, model: str | None = None, python: str | None = None, pool_size: int = 2) -> list[Path]:
    """Write the server scripts, XML configs and a README into ``folder``; return the files.

    On the ONNX runtime the model is converted now, so that the server's workers only read the copy.
    """
    from .encoders import default_model, default_runtime
    from .onnxexport import cache_root, find_or_convert

    folder = Path(folder)
    scripts = folder / "user_scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    model = model or default_model()
    python = python or sys.executable
    runtime = default_runtime()
    converted = f", the model's ONNX copy is in {find_or_convert(model)}" if runtime == "onnx" else ""
    written = []
    for kind, argument in (("text", "text"), ("image", "path")):
        script = scripts / f"encode_{kind}.py"
        script.write_text(SCRIPT.format(python=python, kind=kind, model=model, cache=str(cache_root().resolve()),
                                        runtime=runtime))
        script.chmod(0o755)
        config = folder / f"encode_{kind}_function.xml"
        config.write_text(CONFIG.format(kind=kind, argument=argument, pool_size=pool_size))
        written += [script, config]
    readme = folder / "README.md"
    readme.write_text(README.format(model=model, python=python, runtime=runtime, converted=converted))
    return written + [readme]

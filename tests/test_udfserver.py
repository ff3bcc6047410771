"""`udf export`: scripts a ClickHouse server runs, tested as the server would run them."""

import json
import os
import subprocess
import sys

import numpy as np

from laionsearch.clip.encoders import get_encoder
from laionsearch.clip.udfserver import export_udfs

from .conftest import run_cli


def test_exported_scripts_answer_chunks_on_stdin(tiny_clip, photos, tmp_path):
    export_udfs(tmp_path, model=tiny_clip)
    text_script = tmp_path / "user_scripts" / "encode_text.py"
    assert text_script.read_text().startswith(f"#!{sys.executable}\n") and os.access(text_script, os.X_OK)
    out = subprocess.run([str(text_script)], input="2\ncat\na\\tdog\n1\ncat\n", capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    vectors = np.array([json.loads(line) for line in out.stdout.splitlines()], dtype=np.float32)
    assert vectors.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    encoder = get_encoder(tiny_clip)
    np.testing.assert_allclose(vectors[1], encoder.encode_text("a\tdog"), atol=1e-4)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-4)
    image_script = tmp_path / "user_scripts" / "encode_image.py"
    out = subprocess.run([str(image_script)], input=f"1\n{photos / 'photo_0.png'}\n", capture_output=True, text=True,
                         timeout=300)
    (line,) = out.stdout.splitlines()
    np.testing.assert_allclose(json.loads(line), encoder.encode_image(photos / "photo_0.png"), atol=1e-4)


def test_configs_and_readme(tmp_path, tiny_clip, clip_cache):
    out = run_cli("udf", "export", str(tmp_path), "--model", tiny_clip, "--pool-size", "3").stdout
    script = (tmp_path / "user_scripts" / "encode_text.py").read_text()
    assert f"os.environ.setdefault(\"LAIONSEARCH_CACHE\", {str(clip_cache.resolve())!r})" in script
    assert "the model's ONNX copy is in " + str(clip_cache.resolve()) in (tmp_path / "README.md").read_text()
    assert "encode_text_function.xml" in out
    config = (tmp_path / "encode_image_function.xml").read_text()
    for needle in ("<type>executable_pool</type>", "<name>encode_image</name>", "<return_type>Array(Float32)</return_type>",
                   "<send_chunk_header>1</send_chunk_header>", "<pool_size>3</pool_size>", "<command>encode_image.py</command>"):
        assert needle in config
    readme = (tmp_path / "README.md").read_text()
    assert "WITH (SELECT encode_text('a dog and a cat')) AS target" in readme

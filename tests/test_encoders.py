"""CLIP encoders on both runtimes, loaded through --model DIR exactly like a downloaded model (a tiny random one)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from laionsearch import EncoderError
from laionsearch.clip.encoders import RUNTIMES, default_runtime, get_encoder
from laionsearch.clip.onnxexport import converted_folder


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    if request.param == "onnx":
        pytest.importorskip("onnxruntime", reason="the [clip] extra's onnxruntime is not installed")
    return request.param


def test_text_vectors_are_normalised_deterministic_and_distinct(tiny_clip, runtime):
    encoder = get_encoder(tiny_clip, runtime)
    vectors = encoder.encode_texts(["a cat", "a dog and a cat", "a cat"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-3)
    np.testing.assert_allclose(encoder.encode_text("a dog and a cat"), vectors[1], atol=1e-5)


def test_image_vectors_from_path_and_bytes_agree(tiny_clip, photos, runtime):
    encoder = get_encoder(tiny_clip, runtime)
    path = photos / "photo_2.png"
    a, b, c = encoder.encode_images([path, path.read_bytes(), photos / "photo_3.png"])
    np.testing.assert_allclose(np.linalg.norm([a, b, c], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, c, atol=1e-3)


def test_model_is_loaded_once_per_process(tiny_clip, runtime):
    assert get_encoder(tiny_clip, runtime) is get_encoder(tiny_clip, runtime)
    encoder = get_encoder(tiny_clip, runtime)
    before = encoder.calls
    encoder.encode_texts([f"text {i}" for i in range(40)])  # two batches of 32
    assert encoder.calls - before == 2


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e, p: e.encode_image(p / "missing.png"), "no such image file"),
        (lambda e, p: e.encode_image(p / "notes.jpg"), "not an image"),
        (lambda e, p: e.encode_text("   "), "empty text"),
    ],
)
def test_bad_inputs(tiny_clip, photos, call, message, runtime):
    with pytest.raises(EncoderError, match=message):
        call(get_encoder(tiny_clip, runtime), photos)


def test_unknown_model_folder(tmp_path, runtime):
    with pytest.raises(EncoderError, match="no such folder with a saved CLIP model"):
        get_encoder(str(tmp_path / "no-model"), runtime).encode_text("cat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderError, match="cannot load CLIP model"):
        get_encoder(str(tmp_path / "empty"), runtime).encode_text("cat")


TEXTS = [
    "a cat",
    "two dogs on a red sofa, photographed from above " * 20,  # far beyond 77 tokens: truncated alike
    "ünïcödé 漢字 😀 — \t tabs and\nnewlines",
    "x",
]


def test_onnx_gives_the_torch_vectors(tiny_clip, photos):
    pytest.importorskip("onnxruntime")
    from PIL import Image

    onnx, torch = get_encoder(tiny_clip, "onnx"), get_encoder(tiny_clip, "torch")
    assert np.abs(onnx.encode_texts(TEXTS) - torch.encode_texts(TEXTS)).max() <= 1e-4  # one padded batch
    for text in TEXTS:
        assert np.abs(onnx.encode_text(text) - torch.encode_text(text)).max() <= 1e-4
    rng = np.random.default_rng(0)
    shapes = [(480, 640, 3), (33, 31, 3), (20, 50, 3), (301, 300, 3), (32, 32, 3), (40, 60)]  # last: grey
    images = [Image.fromarray((rng.random(shape) * 255).astype("uint8")) for shape in shapes]
    images += [Image.new("RGBA", (50, 40), (200, 10, 10, 128)), photos / "photo_2.png"]
    assert np.abs(onnx.encode_images(images) - torch.encode_images(images)).max() <= 1e-4
    assert onnx.dim == torch.dim == 512


def test_a_converted_model_answers_without_torch(tiny_clip):
    pytest.importorskip("onnxruntime")
    get_encoder(tiny_clip, "onnx").encode_text("warm the cache")  # converted once, in this process
    folder = converted_folder(tiny_clip)
    assert sorted(p.name for p in folder.iterdir()) == ["clip.json", "image.onnx", "text.onnx", "tokenizer.json"]
    assert json.loads((folder / "clip.json").read_text())["dim"] == 512
    code = ("import sys; from laionsearch.clip.encoders import get_encoder; "
            f"v = get_encoder({tiny_clip!r}).encode_text('a cat'); "
            "print(len(v), 'torch' in sys.modules, 'transformers' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "LAIONSEARCH_CLIP_RUNTIME"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.split() == ["512", "False", "False"], proc.stderr
    assert "converting" not in proc.stderr  # found in the cache


def test_a_changed_model_is_converted_again_and_a_damaged_copy_says_how_to_fix(tiny_clip, tmp_path):
    pytest.importorskip("onnxruntime")
    from laionsearch.clip.randomclip import save_random_clip

    model = str(save_random_clip(tmp_path / "model", seed=1))
    first = converted_folder(model)
    get_encoder(model, "onnx").encode_text("cat")
    (first / "text.onnx").write_bytes(b"not a model")
    from laionsearch.clip.onnxclip import OnnxEncoder

    with pytest.raises(EncoderError, match=f"cannot load {first / 'text.onnx'}.*delete that folder"):
        OnnxEncoder(model).encode_text("cat")
    save_random_clip(tmp_path / "model", seed=2)  # new weights: a new fingerprint, a new conversion
    assert converted_folder(model) != first
    np.testing.assert_allclose(OnnxEncoder(model).encode_text("cat"), get_encoder(model, "torch").encode_text("cat"),
                               atol=1e-4)


def test_runtime_choice(monkeypatch):
    monkeypatch.setenv("LAIONSEARCH_CLIP_RUNTIME", "torch")
    assert default_runtime() == "torch"
    monkeypatch.setenv("LAIONSEARCH_CLIP_RUNTIME", "tensorflow")
    with pytest.raises(EncoderError, match="choose one of onnx, torch"):
        default_runtime()

"""CLIP encoders, loaded through --model DIR exactly like a downloaded model (a tiny random one here)."""

import numpy as np
import pytest

from laionsearch import EncoderError
from laionsearch.clip.encoders import get_encoder


def test_text_vectors_are_normalised_deterministic_and_distinct(tiny_clip):
    encoder = get_encoder(tiny_clip)
    vectors = encoder.encode_texts(["a cat", "a dog and a cat", "a cat"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-3)
    np.testing.assert_allclose(encoder.encode_text("a dog and a cat"), vectors[1], atol=1e-5)


def test_image_vectors_from_path_and_bytes_agree(tiny_clip, photos):
    encoder = get_encoder(tiny_clip)
    path = photos / "photo_2.png"
    a, b, c = encoder.encode_images([path, path.read_bytes(), photos / "photo_3.png"])
    np.testing.assert_allclose(np.linalg.norm([a, b, c], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, c, atol=1e-3)


def test_model_is_loaded_once_per_process(tiny_clip):
    assert get_encoder(tiny_clip) is get_encoder(tiny_clip)
    encoder = get_encoder(tiny_clip)
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
def test_bad_inputs(tiny_clip, photos, call, message):
    with pytest.raises(EncoderError, match=message):
        call(get_encoder(tiny_clip), photos)


def test_unknown_model_folder(tmp_path):
    with pytest.raises(EncoderError, match="no such folder with a saved CLIP model"):
        get_encoder(str(tmp_path / "no-model")).encode_text("cat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderError, match="cannot load CLIP model"):
        get_encoder(str(tmp_path / "empty")).encode_text("cat")

"""CLIP encoders for text and image queries (optional extra ``laionsearch[clip]``).

LAION-400M's vectors come from OpenAI's CLIP ViT-B/32, so queries must be
encoded by that model with its own preprocessing: ``openai/clip-vit-base-patch32``
(default; ``--model`` or ``$LAIONSEARCH_MODEL`` name another model id or a saved
model folder). Two runtimes give the same vectors (within 1e-4):

- ``onnx`` (default when onnxruntime is installed): the model converted once to
  ONNX and cached (``onnxexport``); a query then loads only the tower it needs,
  without torch or transformers: a cold ``search --text`` starts ~4x sooner.
- ``torch``: transformers' ``CLIPModel`` and ``CLIPProcessor``.

``$LAIONSEARCH_CLIP_RUNTIME`` (onnx or torch) chooses. A model is loaded once per
process and reused. Outputs are float32, L2-normalised.
"""

from __future__ import annotations

import importlib.util
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EncoderError

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
RUNTIMES = ("onnx", "torch")
BATCH = 32
#: Larger images are refused before decoding (a small file can declare a huge canvas).
MAX_PIXELS = 50_000_000

_encoders: dict[tuple[str, str], "Encoder"] = {}
_lock = threading.Lock()


def default_model() -> str:
    """``$LAIONSEARCH_MODEL`` if set, else OpenAI's ViT-B/32."""
    return os.environ.get("LAIONSEARCH_MODEL") or DEFAULT_MODEL


def default_runtime() -> str:
    """``$LAIONSEARCH_CLIP_RUNTIME`` if set, else onnx where onnxruntime and tokenizers are installed, else torch."""
    chosen = os.environ.get("LAIONSEARCH_CLIP_RUNTIME")
    if chosen:
        if chosen not in RUNTIMES:
            raise EncoderError(f"LAIONSEARCH_CLIP_RUNTIME={chosen!r}: choose one of {', '.join(RUNTIMES)}")
        return chosen
    have = all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers"))
    return "onnx" if have else "torch"


def get_encoder(model: str | None = None, runtime: str | None = None) -> "Encoder":
    """The process-wide encoder for ``model`` on ``runtime`` (loaded on first use)."""
    key = (model or default_model(), runtime or default_runtime())
    with _lock:
        if key not in _encoders:
            if key[1] == "onnx":
                from .onnxclip import OnnxEncoder as encoder_class
            elif key[1] == "torch":
                from .torchclip import TorchEncoder as encoder_class
            else:
                raise EncoderError(f"unknown CLIP runtime {key[1]!r}; choose one of {', '.join(RUNTIMES)}")
            _encoders[key] = encoder_class(key[0])
        return _encoders[key]


class Encoder:
    """Encodes texts and images with one CLIP model; ``calls`` counts model invocations (batches)."""

    runtime = ""

    def __init__(self, model: str):
        self.model_name = model
        self.calls = 0
        self._loaded = False
        self._load_lock = threading.Lock()

    @property
    def dim(self) -> int:
        self._ensure_loaded()
        return self._dim()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised vector per text, shape (len(texts), dim)."""
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise EncoderError("cannot encode an empty text")
        self._ensure_loaded()
        return self._batched(texts, self._text_batch)

    def encode_images(self, images: Sequence[str | Path | bytes]) -> np.ndarray:
        """One normalised vector per image (a path, an http(s) URL, the file's bytes or a PIL image)."""
        pictures = [load_image(image) for image in images]
        self._ensure_loaded()
        return self._batched(pictures, self._image_batch)

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_texts([text])[0]

    def encode_image(self, image: str | Path | bytes) -> np.ndarray:
        return self.encode_images([image])[0]

    def _batched(self, items: list, encode_batch) -> np.ndarray:
        out = []
        for start in range(0, len(items), BATCH):
            out.append(encode_batch(items[start : start + BATCH]))
            self.calls += 1
        return _normalise(np.concatenate(out) if out else np.zeros((0, self._dim()), np.float32))

    def _ensure_loaded(self) -> None:
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    # What a runtime provides.
    def _load(self) -> None:
        raise NotImplementedError

    def _dim(self) -> int:
        raise NotImplementedError

    def _text_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _image_batch(self, pictures: list) -> np.ndarray:
        raise NotImplementedError


def load_image(image):
    """A PIL image in RGB from a path, an http(s) URL, raw bytes or a PIL image; EncoderError if not an image."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise EncoderError("image search needs the CLIP extra: pip install 'laionsearch[clip]'") from None
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    name = "image"
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
    elif str(image).startswith(("http://", "https://")):
        from ..urlfetch import fetch

        name = str(image)
        data = fetch(name, allow_private=True)  # the user's own command: their network is theirs to use
    else:
        name = str(image)
        try:
            data = Path(image).read_bytes()
        except FileNotFoundError:
            raise EncoderError(f"{name}: no such image file") from None
        except OSError as exc:
            raise EncoderError(f"{name}: cannot read ({exc.strerror})") from None
    try:
        with Image.open(io.BytesIO(data)) as picture:
            pixels = picture.width * picture.height  # from the header: nothing decoded yet
            if pixels > MAX_PIXELS:
                raise EncoderError(f"{name}: {picture.width} x {picture.height} pixels is more than the "
                                   f"{MAX_PIXELS // 1_000_000} megapixel limit")
            return picture.convert("RGB")
    except Image.DecompressionBombError:
        raise EncoderError(f"{name}: more pixels than the {MAX_PIXELS // 1_000_000} megapixel limit") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise EncoderError(f"{name}: not an image (or a format Pillow cannot read)") from None


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)

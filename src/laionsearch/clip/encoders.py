"""CLIP encoders for text and image queries (optional extra ``laionsearch[clip]``).

LAION-400M's vectors come from OpenAI's CLIP ViT-B/32, so queries must be
encoded by that model with its own preprocessing: ``openai/clip-vit-base-patch32``
through transformers' ``CLIPModel`` and ``CLIPProcessor`` (default; ``--model``
or ``$LAIONSEARCH_MODEL`` name another model id or a saved model folder). A
model is loaded once per process and reused. Outputs are float32, L2-normalised.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EncoderError, first_line

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
BATCH = 32
#: Larger images are refused before decoding (a small file can declare a huge canvas).
MAX_PIXELS = 50_000_000

_encoders: dict[str, "ClipEncoder"] = {}
_lock = threading.Lock()


def default_model() -> str:
    """``$LAIONSEARCH_MODEL`` if set, else OpenAI's ViT-B/32."""
    return os.environ.get("LAIONSEARCH_MODEL") or DEFAULT_MODEL


def get_encoder(model: str | None = None) -> "ClipEncoder":
    """The process-wide encoder for ``model`` (loaded on first use)."""
    name = model or default_model()
    with _lock:
        if name not in _encoders:
            _encoders[name] = ClipEncoder(name)
        return _encoders[name]


class ClipEncoder:
    """Encodes texts and images with one CLIP model; ``calls`` counts model invocations."""

    def __init__(self, model: str):
        self.model_name = model
        self.calls = 0
        self._model = self._processor = None
        self._load_lock = threading.Lock()

    @property
    def dim(self) -> int:
        self._load()
        return int(self._model.config.projection_dim)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised vector per text, shape (len(texts), dim)."""
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise EncoderError("cannot encode an empty text")
        self._load()
        import torch

        out = []
        for start in range(0, len(texts), BATCH):
            inputs = self._processor(
                text=texts[start : start + BATCH], return_tensors="pt", padding=True, truncation=True, max_length=77
            )
            with torch.no_grad():
                out.append(_features(self._model.get_text_features(**inputs)))
            self.calls += 1
        return _normalise(np.concatenate(out) if out else np.zeros((0, self.dim), np.float32))

    def encode_images(self, images: Sequence[str | Path | bytes]) -> np.ndarray:
        """One normalised vector per image (a path, an http(s) URL, the file's bytes or a PIL image)."""
        pictures = [load_image(image) for image in images]
        self._load()
        import torch

        out = []
        for start in range(0, len(pictures), BATCH):
            inputs = self._processor(images=pictures[start : start + BATCH], return_tensors="pt")
            with torch.no_grad():
                out.append(_features(self._model.get_image_features(**inputs)))
            self.calls += 1
        return _normalise(np.concatenate(out) if out else np.zeros((0, self.dim), np.float32))

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_texts([text])[0]

    def encode_image(self, image: str | Path | bytes) -> np.ndarray:
        return self.encode_images([image])[0]

    def _load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            try:
                from transformers import CLIPModel, CLIPProcessor
            except ImportError:
                raise EncoderError(
                    "text and image search need the CLIP extra: pip install 'laionsearch[clip]' "
                    "(on CPU-only machines install torch==2.13.0 first)"
                ) from None
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
            hf_logging.set_verbosity_error()  # nor advice about optional backends (torchvision)
            local = Path(self.model_name).is_dir()
            looks_like_path = self.model_name.startswith(("/", "./", "../", "~")) or Path(self.model_name).exists()
            if not local and looks_like_path:
                raise EncoderError(f"--model {self.model_name}: no such folder with a saved CLIP model")
            try:
                # Prefer what is on disk; only go to the Hugging Face hub when it is not there.
                self._model, self._processor = _from_pretrained(CLIPModel, CLIPProcessor, self.model_name, True)
            except OSError as exc:
                if local or os.environ.get("HF_HUB_OFFLINE"):
                    raise EncoderError(f"cannot load CLIP model {self.model_name}: {first_line(exc)}") from None
                try:
                    self._model, self._processor = _from_pretrained(CLIPModel, CLIPProcessor, self.model_name, False)
                except OSError:
                    raise EncoderError(
                        f"CLIP model {self.model_name} is not in the local Hugging Face cache and could not be "
                        "downloaded. Fetch it once where there is network (python -c \"from transformers import "
                        f"CLIPModel, CLIPProcessor; CLIPModel.from_pretrained('{self.model_name}'); "
                        f"CLIPProcessor.from_pretrained('{self.model_name}')\"), or pass --model DIR with a "
                        "saved copy (save_pretrained)"
                    ) from None
            self._model.eval()


def _from_pretrained(model_cls, processor_cls, name: str, local_only: bool):
    return (
        model_cls.from_pretrained(name, local_files_only=local_only),
        processor_cls.from_pretrained(name, local_files_only=local_only),
    )


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


def _features(output) -> np.ndarray:
    # transformers 5 returns an output object whose pooler_output is the projected vector.
    tensor = output if hasattr(output, "numpy") else output.pooler_output
    return tensor.detach().float().numpy()


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)

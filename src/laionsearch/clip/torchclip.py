"""The torch runtime: transformers' ``CLIPModel`` and ``CLIPProcessor``, and loading a model by id or folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import EncoderError, first_line
from .encoders import Encoder


class TorchEncoder(Encoder):
    """CLIP through transformers and torch (the reference the ONNX runtime is tested against)."""

    runtime = "torch"

    def _load(self) -> None:
        self._model, self._processor = load_pretrained(self.model_name)

    def _dim(self) -> int:
        return int(self._model.config.projection_dim)

    def _text_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        inputs = self._processor(text=texts, return_tensors="pt", padding=True, truncation=True, max_length=77)
        with torch.no_grad():
            return _features(self._model.get_text_features(**inputs))

    def _image_batch(self, pictures: list) -> np.ndarray:
        import torch

        inputs = self._processor(images=pictures, return_tensors="pt")
        with torch.no_grad():
            return _features(self._model.get_image_features(**inputs))


def load_pretrained(name: str):
    """``(CLIPModel, CLIPProcessor)`` for a model id or a saved folder, from disk first, else from the hub."""
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
    local = Path(name).is_dir()
    looks_like_path = name.startswith(("/", "./", "../", "~")) or Path(name).exists()
    if not local and looks_like_path:
        raise EncoderError(f"--model {name}: no such folder with a saved CLIP model")
    try:
        # Prefer what is on disk; only go to the Hugging Face hub when it is not there.
        model, processor = _from_pretrained(CLIPModel, CLIPProcessor, name, True)
    except OSError as exc:
        if local or os.environ.get("HF_HUB_OFFLINE"):
            raise EncoderError(f"cannot load CLIP model {name}: {first_line(exc)}") from None
        try:
            model, processor = _from_pretrained(CLIPModel, CLIPProcessor, name, False)
        except OSError:
            raise EncoderError(
                f"CLIP model {name} is not in the local Hugging Face cache and could not be "
                "downloaded. Fetch it once where there is network (python -c \"from transformers import "
                f"CLIPModel, CLIPProcessor; CLIPModel.from_pretrained('{name}'); "
                f"CLIPProcessor.from_pretrained('{name}')\"), or pass --model DIR with a "
                "saved copy (save_pretrained)"
            ) from None
    model.eval()
    return model, processor


def _from_pretrained(model_cls, processor_cls, name: str, local_only: bool):
    return (
        model_cls.from_pretrained(name, local_files_only=local_only),
        processor_cls.from_pretrained(name, local_files_only=local_only),
    )


def _features(output) -> np.ndarray:
    # transformers 5 returns an output object whose pooler_output is the projected vector.
    tensor = output if hasattr(output, "numpy") else output.pooler_output
    return tensor.detach().float().numpy()

"""The ONNX runtime: CLIP's towers on onnxruntime, the tokenizer on ``tokenizers``, images on Pillow and numpy.

Gives the vectors of the torch runtime (within 1e-4; tested) without importing
torch or transformers: the image preprocessing below is CLIPImageProcessor's
(resize the shortest edge with the model's resampling filter, centre crop,
rescale, normalise), the tokenizer is the processor's own fast tokenizer file.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import EncoderError, first_line
from .encoders import Encoder
from .onnxexport import find_or_convert


class OnnxEncoder(Encoder):
    """CLIP through onnxruntime; each tower's session is created on its first use."""

    runtime = "onnx"

    def _load(self) -> None:
        self.folder = find_or_convert(self.model_name)
        self.meta = json.loads((self.folder / "clip.json").read_text())
        self._sessions: dict[str, object] = {}
        self._tokenizer = None

    def _dim(self) -> int:
        return int(self.meta["dim"])

    def _text_batch(self, texts: list[str]) -> np.ndarray:
        tokenizer = self._tokenizer or self._load_tokenizer()
        encoded = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        return self._session("text").run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def _image_batch(self, pictures: list) -> np.ndarray:
        pixels = np.stack([preprocess(p, self.meta["image"]) for p in pictures])
        return self._session("image").run(None, {"pixel_values": pixels})[0]

    def _load_tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=int(self.meta["max_tokens"]))  # special tokens included
        tokenizer.enable_padding(pad_id=int(self.meta["pad_id"]), pad_token=self.meta["pad_token"])
        self._tokenizer = tokenizer
        return tokenizer

    def _session(self, tower: str):
        with self._load_lock:
            if tower not in self._sessions:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.log_severity_level = 3  # errors only
                try:
                    self._sessions[tower] = onnxruntime.InferenceSession(
                        str(self.folder / f"{tower}.onnx"), options, providers=["CPUExecutionProvider"]
                    )
                except Exception as exc:  # a damaged cache file: say which and how to redo it
                    raise EncoderError(
                        f"cannot load {self.folder / f'{tower}.onnx'} ({first_line(exc)}); delete that folder "
                        "to convert the model again"
                    ) from None
            return self._sessions[tower]


def preprocess(picture, spec: dict) -> np.ndarray:
    """CLIPImageProcessor's pixels for one RGB PIL image: float32, (3, height, width)."""
    width, height = picture.size
    edge = int(spec["shortest_edge"])
    # transformers' get_resize_output_image_size(default_to_square=False): int() truncates the long side.
    if width <= height:
        size = (edge, int(edge * height / width))
    else:
        size = (int(edge * width / height), edge)
    pixels = np.asarray(picture.resize(size, resample=int(spec["resample"])), dtype=np.uint8)
    pixels = _centre_crop(pixels, *spec["crop"])
    scaled = (pixels.astype(np.float64) * float(spec["rescale_factor"])).astype(np.float32)
    mean, std = np.array(spec["mean"], np.float32), np.array(spec["std"], np.float32)
    return ((scaled - mean) / std).transpose(2, 0, 1).copy()


def _centre_crop(pixels: np.ndarray, crop_height: int, crop_width: int) -> np.ndarray:
    """transformers' center_crop on (height, width, channels): zero padding where the image is smaller."""
    height, width = pixels.shape[:2]
    if crop_height > height or crop_width > width:
        padded = np.zeros((max(crop_height, height), max(crop_width, width), pixels.shape[2]), pixels.dtype)
        top, left = (padded.shape[0] - height + 1) // 2, (padded.shape[1] - width + 1) // 2
        padded[top : top + height, left : left + width] = pixels
        pixels, height, width = padded, padded.shape[0], padded.shape[1]
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return pixels[top : top + crop_height, left : left + crop_width]


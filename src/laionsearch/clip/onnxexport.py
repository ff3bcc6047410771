"""Convert a CLIP model to ONNX once, and find the converted copy again without importing torch.

A converted model is a folder in the cache (``$LAIONSEARCH_CACHE``, else
``~/.cache/laionsearch``) named after the model and a fingerprint of its files:
``text.onnx`` and ``image.onnx`` (one tower each, so a text query loads only the
text tower), ``tokenizer.json`` (the Hugging Face fast tokenizer the processor
uses) and ``clip.json`` (dimension, token ids, image preprocessing). The folder
appears under its final name only when complete. Converting needs the
``[clip]`` extra (torch, transformers, onnx); using the result needs only
onnxruntime, tokenizers, numpy and Pillow.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

from ..errors import EncoderError, first_line

FORMAT_VERSION = 1
OPSET = 17
log = logging.getLogger("laionsearch")


def cache_root() -> Path:
    """Where converted models live: ``$LAIONSEARCH_CACHE``, else ``~/.cache/laionsearch``."""
    return Path(os.environ.get("LAIONSEARCH_CACHE") or Path.home() / ".cache" / "laionsearch")


def converted_folder(model: str) -> Path | None:
    """The cache folder for ``model`` as it is on disk now, or None if its files cannot be found locally."""
    fingerprint = _fingerprint(model)
    if fingerprint is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.strip("/~.")).strip("-")[-60:] or "model"
    return cache_root() / "clip-onnx" / f"{slug}-{fingerprint}"


def find_or_convert(model: str) -> Path:
    """The converted copy of ``model``, converting it first if there is none (once per model version)."""
    folder = converted_folder(model)
    if folder is not None and (folder / "clip.json").is_file():
        return folder
    from .torchclip import load_pretrained

    hf_model, processor = load_pretrained(model)  # downloads a hub model that is not cached yet
    folder = converted_folder(model)
    if folder is None:
        raise EncoderError(f"cannot locate the files of CLIP model {model} to convert it")
    if not (folder / "clip.json").is_file():
        log.warning("converting CLIP model %s to ONNX once (cached in %s)", model, folder)
        _convert(hf_model, processor, folder)
    return folder


def _convert(hf_model, processor, folder: Path) -> None:
    if importlib.util.find_spec("onnx") is None:  # torch's exporter needs it
        raise EncoderError("converting CLIP to ONNX needs the CLIP extra: pip install 'laionsearch[clip]'")
    import torch

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        tokenizer = processor.tokenizer
        ids = tokenizer(["a photo", "two dogs on a red sofa"], padding=True, return_tensors="pt")
        size = processor.image_processor.crop_size
        pixels = torch.zeros(1, 3, size["height"], size["width"])
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about Python-level length checks: inputs are capped at max_tokens before they run.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _tower(hf_model.get_text_features), (ids["input_ids"], ids["attention_mask"]), str(work / "text.onnx"),
                input_names=["input_ids", "attention_mask"], output_names=["embeds"], opset_version=OPSET,
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "embeds": {0: "batch"}},
                dynamo=False,
            )
            torch.onnx.export(
                _tower(hf_model.get_image_features), (pixels,), str(work / "image.onnx"),
                input_names=["pixel_values"], output_names=["embeds"], opset_version=OPSET,
                dynamic_axes={"pixel_values": {0: "batch"}, "embeds": {0: "batch"}}, dynamo=False,
            )
        tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
        images = processor.image_processor
        meta = {
            "format": FORMAT_VERSION,
            "dim": int(hf_model.config.projection_dim),
            "max_tokens": int(min(tokenizer.model_max_length, hf_model.config.text_config.max_position_embeddings)),
            "pad_id": int(tokenizer.pad_token_id),
            "pad_token": str(tokenizer.pad_token),
            "image": {
                "shortest_edge": int(images.size["shortest_edge"]),
                "crop": [int(size["height"]), int(size["width"])],
                "resample": int(images.resample),
                "rescale_factor": float(images.rescale_factor),
                "mean": [float(v) for v in images.image_mean],
                "std": [float(v) for v in images.image_std],
            },
        }
        (work / "clip.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():  # another process finished first: theirs is as good as ours
            shutil.rmtree(work)
        else:
            os.replace(work, folder)
    except EncoderError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except Exception as exc:  # the exporter raises many kinds; the user needs one line
        shutil.rmtree(work, ignore_errors=True)
        raise EncoderError(f"converting CLIP model to ONNX failed: {first_line(exc)}") from exc


def _tower(method):
    """One tower of the model (``get_text_features`` or ``get_image_features``) as a module returning the embedding."""
    import torch

    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.owner = method.__self__  # registers the weights as this module's

        def forward(self, *args):
            out = method(*args)
            return out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers 5: an output object

    return Tower()


def _fingerprint(model: str) -> str | None:
    """A short hash of the model's files (a saved folder) or of its hub revision (a cached hub model)."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.is_file())
        if not files:
            return None
        facts = [str(folder.resolve())] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    else:
        revision = _hub_revision(model)
        if revision is None:
            return None
        facts = [model, revision]
    facts.append(f"format {FORMAT_VERSION}")
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:16]


def _hub_revision(model: str) -> str | None:
    """The commit of the Hugging Face cache's copy of ``model`` (read from its refs file, no hub import)."""
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if not hub:
        home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
        hub = Path(home) / "hub"
    ref = Path(hub) / ("models--" + model.replace("/", "--")) / "refs" / "main"
    try:
        return ref.read_text().strip() or None
    except OSError:
        return None

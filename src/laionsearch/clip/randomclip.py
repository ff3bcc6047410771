"""A randomly initialised CLIP saved exactly like a downloaded one, for tests and benchmarks offline.

``save_random_clip(DIR)`` writes a model directory that ``--model DIR`` loads
through the same code path as ``openai/clip-vit-base-patch32``: config,
weights, a byte-level BPE tokenizer (``vocab.json``, ``merges.txt``) and an
image processor. ``size="tiny"`` is a 2-layer model with 512-d outputs for
tests; ``size="vit-b-32"`` has the real ViT-B/32 architecture (151 M
parameters), so it encodes exactly as fast as the real weights.
"""

from __future__ import annotations

import json
from pathlib import Path


def _byte_alphabet() -> list[str]:
    """GPT-2/CLIP's byte-to-unicode table: the 256 symbols byte-level BPE works on."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def save_random_clip(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random CLIP (``tiny`` or ``vit-b-32``) with tokenizer and processor to ``folder``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_alphabet()
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    if size == "tiny":
        image_size = 32
        config = CLIPConfig(
            text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, max_position_embeddings=77, bos_token_id=len(vocab) - 2,
                             eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                               image_size=image_size, patch_size=8),
            projection_dim=512,
        )
    elif size == "vit-b-32":
        image_size = 224
        config = CLIPConfig(text_config=dict(vocab_size=49408), projection_dim=512)  # the defaults are ViT-B/32
    else:
        raise ValueError(f"unknown size {size!r}")
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        ),
        tokenizer=tokenizer,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder

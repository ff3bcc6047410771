"""CLIP benchmark: the real ViT-B/32 architecture (random weights: same size and speed) on this machine.

Run by hand (not part of `make test`):

    .venv/bin/python benchmarks/clip.py --store bench-data/ann-store-1000000

Measures model load time, text and image encode latency, images/s in batches of
32, and end-to-end `search --text` latency (encode + ANN search, warm, in one
process) on an indexed store, e.g. the 1M-row store `benchmarks/ann.py` builds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def percentiles(times_ms):
    return np.percentile(times_ms, [50, 95]).round(1).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="an indexed laionsearch store for the end-to-end search")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from PIL import Image

    import laionsearch as ls
    from laionsearch.clip.encoders import ClipEncoder
    from laionsearch.clip.randomclip import save_random_clip

    work = Path(tempfile.mkdtemp(prefix="clip-bench-"))
    save_random_clip(work / "vit-b-32", size="vit-b-32")
    started = time.perf_counter()
    encoder = ClipEncoder(str(work / "vit-b-32"))
    encoder.encode_text("warm up")
    load_s = time.perf_counter() - started
    params = sum(p.numel() for p in encoder._model.parameters())
    rng = np.random.default_rng(0)
    images = []
    for i in range(64):
        path = work / f"img_{i}.jpg"
        Image.fromarray((rng.random((480, 640, 3)) * 255).astype("uint8")).save(path, quality=90)
        images.append(path)

    text_ms = []
    for i in range(args.runs):
        t = time.perf_counter()
        encoder.encode_text(f"a photo of a dog number {i}")
        text_ms.append((time.perf_counter() - t) * 1000)
    image_ms = []
    for i in range(args.runs):
        t = time.perf_counter()
        encoder.encode_image(images[i % len(images)])
        image_ms.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    encoder.encode_images(images)
    images_per_s = len(images) / (time.perf_counter() - t)

    print(f"machine: {os.cpu_count()} cores; model: ViT-B/32 architecture, {params / 1e6:.0f} M parameters, random init")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| model load (first encode included) | {load_s:.1f} s |")
    print(f"| text encode p50 / p95 | {percentiles(text_ms)[0]} / {percentiles(text_ms)[1]} ms |")
    print(f"| image encode (640x480 JPEG) p50 / p95 | {percentiles(image_ms)[0]} / {percentiles(image_ms)[1]} ms |")
    print(f"| images/s, batches of 32 | {images_per_s:.1f} |")
    if args.store:
        store = ls.Store(args.store)
        rows = sum(ls.stored_parts(store).values())
        ls.search(store, encoder.encode_text("warm up"), k=10)  # loads the index
        e2e_ms, search_ms = [], []
        for i in range(args.runs):
            t = time.perf_counter()
            vector = encoder.encode_text(f"a photo of a cat number {i}")
            t2 = time.perf_counter()
            ls.search(store, vector, k=10)
            end = time.perf_counter()
            e2e_ms.append((end - t) * 1000)
            search_ms.append((end - t2) * 1000)
        p50, p95 = percentiles(e2e_ms)
        print(f"| search --text end to end, {rows:,} rows, indexed, warm: p50 / p95 | {p50} / {p95} ms |")
        print(f"| of which ANN search p50 | {percentiles(search_ms)[0]} ms |")


if __name__ == "__main__":
    main()

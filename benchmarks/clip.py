"""CLIP benchmark: the real ViT-B/32 architecture (random weights: same size and speed) on this machine.

Run by hand (not part of `make test`):

    .venv/bin/python benchmarks/clip.py --store bench-data/ann-store-1000000

Measures, for each CLIP runtime (onnx, torch), model load time, text and image
encode latency, images/s in batches of 32, and end-to-end `search --text` latency
(encode + ANN search, warm, in one process) on an indexed store, e.g. the 1M-row
store `benchmarks/ann.py` builds. The ONNX conversion is done before timing.
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
    from laionsearch.clip.encoders import RUNTIMES, get_encoder
    from laionsearch.clip.onnxexport import find_or_convert
    from laionsearch.clip.randomclip import save_random_clip

    work = Path(tempfile.mkdtemp(prefix="clip-bench-"))
    os.environ.setdefault("LAIONSEARCH_CACHE", str(work / "cache"))
    model = str(save_random_clip(work / "vit-b-32", size="vit-b-32"))
    find_or_convert(model)
    rng = np.random.default_rng(0)
    images = []
    for i in range(64):
        path = work / f"img_{i}.jpg"
        Image.fromarray((rng.random((480, 640, 3)) * 255).astype("uint8")).save(path, quality=90)
        images.append(path)

    print(f"machine: {os.cpu_count()} cores; model: ViT-B/32 architecture (151 M parameters), random init")
    print("| runtime | measure | value |")
    print("|---|---|---:|")
    for runtime in RUNTIMES:
        started = time.perf_counter()
        encoder = get_encoder(model, runtime)
        encoder.encode_text("warm up")
        encoder.encode_image(images[0])
        load_s = time.perf_counter() - started
        measure(ls, encoder, images, load_s, args)


def measure(ls, encoder, images, load_s, args) -> None:
    row = lambda measure, value: print(f"| {encoder.runtime} | {measure} | {value} |")  # noqa: E731
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

    row("model load (first text and image encode included)", f"{load_s:.1f} s")
    row("text encode p50 / p95", f"{percentiles(text_ms)[0]} / {percentiles(text_ms)[1]} ms")
    row("image encode (640x480 JPEG) p50 / p95", f"{percentiles(image_ms)[0]} / {percentiles(image_ms)[1]} ms")
    row("images/s, batches of 32", f"{images_per_s:.1f}")
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
        row(f"search --text end to end, {rows:,} rows, indexed, warm: p50 / p95", f"{p50} / {p95} ms")
        row("of which ANN search p50", f"{percentiles(search_ms)[0]} ms")


if __name__ == "__main__":
    main()

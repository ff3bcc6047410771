"""Exact search: by dot product (what laionsearch now does for unit vectors), by cosine distance (before), and numpy.

Run by hand (not part of `make test`), on a store ingested by this version (it records the vectors'
lengths), e.g.:

    .venv/bin/laionsearch --db /tmp/bench/exact ingest /tmp/bench/ann-1000000
    .venv/bin/python benchmarks/exact.py --db /tmp/bench/exact --parts /tmp/bench/ann-1000000 --queries 30

Per query, one after another and alternating: `search(..., exact=True)` (dot product over the
table, cosine distance for the candidates), the same with the dot-product path switched off
(cosine distance over the table, the plan before this change), and numpy's float32 matrix-vector
product with argpartition over the same part's vectors, held in memory. Printed: p50 of each,
ratios to numpy, and whether every answer had the same ids as numpy's. The processor's vector
extensions are printed first: the engine's kernels differ a lot between AVX2 and AVX-512.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import laionsearch as ls
import laionsearch.ops.search as searching
from laionsearch.ops.evaluate import sample_queries


def flags() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    line = next((l for l in text.splitlines() if l.startswith("flags")), "")
    wanted = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16")
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("model name")), "?")
    return f"{model}; " + ", ".join(f for f in wanted if f" {f}" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--parts", required=True, help="The release folder the store was ingested from (part 0).")
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    print(flags())
    store = ls.Store(args.db)
    vectors = np.load(Path(args.parts) / "img_emb" / "img_emb_0.npy").astype(np.float32)
    ids = np.arange(len(vectors), dtype=np.int64)
    norms = np.linalg.norm(vectors, axis=1)
    queries = sample_queries(store, "image", args.queries, seed=2).astype(np.float32)  # numpy: no float64 upcast
    times = {"dot": [], "cosine": [], "numpy": []}
    same = {"dot": 0, "cosine": 0}
    plans = set()
    for i, q in enumerate(queries):
        started = time.perf_counter()
        similarity = vectors @ (q / np.linalg.norm(q)) / norms  # cosine similarity to every row
        top = np.argpartition(-similarity, 10)[:10]
        truth = ids[top[np.argsort(-similarity[top])]].tolist()
        times["numpy"].append(time.perf_counter() - started)
        for way in (("dot", "cosine") if i % 2 == 0 else ("cosine", "dot")):
            searching.MAX_UNIT_ERROR = 0.01 if way == "dot" else -1.0
            started = time.perf_counter()
            found = ls.search(store, q, k=10, exact=True)
            times[way].append(time.perf_counter() - started)
            same[way] += found.column("id").to_pylist() == truth
            plans.add(found.plan)
    p50 = {w: float(np.median(t)) * 1000 for w, t in times.items()}
    print(f"{len(vectors):,} rows, {args.queries} queries, k=10; plans seen: {', '.join(sorted(plans))}")
    print("| way | p50 | / numpy | same ids as numpy |")
    print("|---|---:|---:|---|")
    for way in ("dot", "cosine", "numpy"):
        agreed = f"{same[way]}/{args.queries}" if way in same else "-"
        print(f"| {way} | {p50[way]:.0f} ms | {p50[way] / p50['numpy']:.2f} | {agreed} |")


if __name__ == "__main__":
    main()

"""Storage benchmark: how embeddings are stored (`ingest --storage`) vs exact search, disk and index build.

Run by hand (not part of `make test`):

    .venv/bin/python benchmarks/storage.py --rows 1000000 --no-index   # exact search and disk on 1M rows
    .venv/bin/python benchmarks/storage.py --rows 100000               # plus HNSW build (guide's parameters)

Each storage gets its own database in one chDB store, loaded from the same
synthetic part. Exact search is `laionsearch.search(..., exact=True)`, k=10,
median of 20 queries after one warm-up; numpy is float32 matmul + argpartition
over the same vectors in memory.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

import laionsearch as ls
from laionsearch.ops.evaluate import sample_queries
from laionsearch.schema import STORAGES, TABLE

from bench_common import median_ms, synthetic_part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workdir", default="bench-data")
    parser.add_argument("--no-index", action="store_true", help="skip the HNSW build")
    args = parser.parse_args()
    work = Path(args.workdir).resolve()
    parts = synthetic_part(work, args.rows)
    shutil.rmtree(work / "storage-store", ignore_errors=True)
    vectors = np.load(parts / "img_emb" / "img_emb_0.npy").astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = None
    print(f"{args.rows:,} rows x 2 embedding columns, 512-d\n")
    print("| storage | ingest (s) | embeddings on disk (MB) | exact search p50 (ms) | HNSW build (s) |")
    print("|---|---:|---:|---:|---:|")
    for storage in STORAGES:
        store = ls.Store(work / "storage-store", database=storage.replace("-", "_"))
        started = time.perf_counter()
        ls.ingest(store, parts, storage=storage)
        ingest_s = time.perf_counter() - started
        if queries is None:
            queries = sample_queries(store, "image", 20, seed=3)
        (disk,) = store.query(
            "SELECT sum(data_compressed_bytes) AS b FROM system.columns WHERE database = {db:String} "
            "AND table = {t:String} AND name LIKE '%embedding'",
            {"db": store.database, "t": TABLE},
        ).to_pylist()
        exact = median_ms(lambda q: ls.search(store, q, k=10, exact=True), queries)
        build = "-"
        if not args.no_index:
            started = time.perf_counter()
            ls.create_index(store, "image")
            build = f"{time.perf_counter() - started:.1f}"
        print(f"| {storage} ({STORAGES[storage]}) | {ingest_s:.1f} | {disk['b'] / 1e6:,.0f} | {exact:.0f} | {build} |",
              flush=True)

    def numpy_exact(q):
        scores = unit @ (q / np.linalg.norm(q))
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])]

    print(f"| numpy in memory (float32) | - | - | {median_ms(numpy_exact, queries):.0f} | - |")


if __name__ == "__main__":
    main()

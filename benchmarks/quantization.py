"""Index settings that fit a memory budget: recall@10, latency, build time and memory per vector.

Run by hand (not part of `make test`); at 1,000,000 rows each build takes minutes:

    .venv/bin/python benchmarks/quantization.py --rows 1000000 --work /tmp/bench

On one synthetic part (seed 1, as the other vector benchmarks), for each setting
QUANTIZATION:M:EF_CONSTRUCTION: drop the image index, `create_index` (wall time), read
the index's size in memory from `index status`, then 200 perturbed stored vectors as
queries (recall@10 against numpy's exact answer; p50 of single queries one after
another) at each ef, and with rescoring (`search(..., rescore=N)`: N x k candidates
ranked by exact distance) where asked. One line per measurement, printed as it comes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_common import recall, synthetic_part  # noqa: E402

import laionsearch as ls  # noqa: E402
from laionsearch.ops.evaluate import exact_top_k, sample_queries  # noqa: E402
from laionsearch.ops.index import index_status  # noqa: E402

DEFAULT_SETTINGS = "bf16:64:256,bf16:32:128,bf16:16:64,f16:32:128,i8:32:128,i8:16:64,b1:32:128,b1:64:256"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("bench-data"))
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="QUANTIZATION:M:EF_CONSTRUCTION, comma-separated")
    parser.add_argument("--efs", default="64,128,256")
    parser.add_argument("--rescore", default="4,16", help="rescoring multipliers tried for i8 and b1")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    parts = synthetic_part(args.work, args.rows)
    store = ls.Store(args.work / f"quant-store-{args.rows}")
    ls.ingest(store, parts)
    rows = sum(ls.stored_parts(store).values())
    queries = sample_queries(store, "image", args.queries, seed=7)
    truth = exact_top_k(store, "image", queries, 10)
    efs = [int(v) for v in args.efs.split(",")]
    flags = Path("/proc/cpuinfo").read_text()
    print(f"{rows:,} rows, 512-d, {args.queries} queries, k=10; {os.cpu_count()} cores, "
          f"{'avx512' if 'avx512f' in flags else 'avx2' if 'avx2' in flags else 'no avx2'}", flush=True)
    print("| quantization | M | ef_construction | build (s) | index bytes per vector | ef | rescore | recall@10 | p50 (ms) |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|", flush=True)
    for setting in args.settings.split(","):
        quantization, m, efc = setting.split(":")
        if "image" in {s.column for s in index_status(store)}:
            ls.drop_index(store, "image")
        seconds = ls.create_index(store, "image", quantization=quantization, m=int(m), ef_construction=int(efc))
        status = next(s for s in index_status(store) if s.column == "image")
        per_vector = status.bytes_in_memory / rows
        rescores = [None] + ([int(v) for v in args.rescore.split(",")] if quantization in ("i8", "b1") else [])
        for ef in efs:
            for rescore in rescores:
                found, times = [], []
                ls.search(store, queries[0], k=10, ef=ef, rescore=rescore)  # graphs into the cache
                for q in queries:
                    started = time.perf_counter()
                    hits = ls.search(store, q, k=10, ef=ef, rescore=rescore)
                    times.append((time.perf_counter() - started) * 1000)
                    found.append(hits.column("id").to_numpy())
                print(f"| {quantization} | {m} | {efc} | {seconds:.0f} | {per_vector:.0f} | {ef} | "
                      f"{'x' + str(rescore) if rescore else 'no'} | {recall(found, truth, 10):.3f} | "
                      f"{np.median(times):.1f} |", flush=True)


if __name__ == "__main__":
    main()

"""Where a search statement's time goes on the embedded engine: binding the vector, the id-only
ANN statement, the same with the hits' metadata, and how each scales with threads.

    .venv/bin/python benchmarks/statement.py --db /tmp/bench/concurrency-1000000-m16-efc64 \\
        --queries /tmp/bench/queries.npy

(the store and queries that `benchmarks/concurrency.py --work /tmp/bench` leaves). Per
statement: the median of 200 runs after 20 warm-up runs, then queries per second from 1,
2 and 4 threads for --seconds each.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import laionsearch as ls
from laionsearch.engine.params import vector_hex, vector_sql

COLUMNS = "id, url, caption, NSFW, similarity"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--queries", type=Path, required=True, help=".npy of query vectors (n, dim)")
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    store = ls.Store(args.db)
    queries = np.load(args.queries).astype(np.float32)
    table = store.table("laion")

    def ann(columns: str):
        sql = (f"SELECT {columns}, cosineDistance(image_embedding, {vector_sql('t')}) AS d FROM {table} "
               "ORDER BY d LIMIT 10 SETTINGS hnsw_candidate_list_size_for_search = 128")
        return lambda q: store.query(sql, {"t": vector_hex(q)})

    statements = {
        "SELECT 1": lambda q: store.query("SELECT 1"),
        "bind the vector as 512 decimals": lambda q: store.query("SELECT {v:Array(Float32)} IS NULL", {"v": q}),
        "bind the vector as hex": lambda q: store.query(f"SELECT {vector_sql('v')} IS NULL", {"v": vector_hex(q)}),
        "ANN ef 128, ids": ann("id"),
        "ANN ef 128, with metadata": ann(COLUMNS),
    }
    print(f"\n{args.db}, {len(queries)} queries\n")
    print("| statement | p50 (ms) | QPS 1 thread | 2 threads | 4 threads |")
    print("|---|---:|---:|---:|---:|")
    for name, run in statements.items():
        for q in queries[:20]:
            run(q)
        times = []
        for q in queries:
            started = time.perf_counter()
            run(q)
            times.append(time.perf_counter() - started)
        qps = [rate(run, queries, threads, args.seconds) for threads in (1, 2, 4)]
        print(f"| {name} | {np.median(times) * 1000:.2f} | " + " | ".join(f"{r:,.0f}" for r in qps) + " |")


def rate(run, queries: np.ndarray, threads: int, seconds: float) -> float:
    """Statements per second from ``threads`` threads for ``seconds``."""
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def loop(i: int) -> None:
        j = i
        while time.monotonic() < deadline:
            run(queries[j % len(queries)])
            counts[i] += 1
            j += threads

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    return sum(counts) / seconds


if __name__ == "__main__":
    main()

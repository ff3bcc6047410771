"""Exact search: by dot product (what laionsearch does for unit vectors), by cosine distance, and numpy.

Run by hand (not part of `make test`), on a store ingested by this version (it records the vectors'
lengths), e.g. for float32 and bfloat16 storage:

    .venv/bin/laionsearch synth /tmp/bench/ann-1000000 --rows 1000000
    .venv/bin/laionsearch --db /tmp/bench/exact ingest /tmp/bench/ann-1000000
    .venv/bin/laionsearch --db /tmp/bench/exact-bf16 ingest /tmp/bench/ann-1000000 --storage bfloat16
    .venv/bin/python benchmarks/exact.py --db /tmp/bench/exact --queries 30
    .venv/bin/python benchmarks/exact.py --db /tmp/bench/exact-bf16 --queries 30

Per query, round-robin so that the machine's drift hits every way alike: `search(..., exact=True)`
(a dot-product scan, then cosine distance for the candidates: ``ops/exact.py``), the same reading the
column the engine's default way (copied into its buffers, not mapped: as before 2026-12-01), the same
with the dot-product path switched off (cosine distance over the table), the same with the column held
in the engine's memory (``hold_vectors``: ``ops/held.py``, the copy made once before the queries), the
scan alone without any distance, read as exact search reads (how long the engine takes just to read
the vectors from the table: a floor for any exact search over it), and numpy's float32 matrix-vector
product with argpartition over the same part's vectors, held in memory. Printed: p50 of each, ratios
to numpy, and whether every answer had the same ids as numpy's (over the vectors as stored: a
bfloat16 store's are rounded). The processor's vector extensions are printed first: the engine's
kernels differ a lot between AVX2 and AVX-512.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import laionsearch as ls
import laionsearch.ops.exact as exact_search
import laionsearch.ops.search as searching
from laionsearch.ops.evaluate import iter_vectors, sample_queries
from laionsearch.ops.held import held_copy
from laionsearch.schema import stored_storage
from laionsearch.sizes import human


def flags() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    line = next((l for l in text.splitlines() if l.startswith("flags")), "")
    wanted = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16")
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("model name")), "?")
    return f"{model}; " + ", ".join(f for f in wanted if f" {f}" in line)


MAPPED = exact_search.MMAP_MIN_BYTES


def open_store(doc: str) -> tuple[argparse.Namespace, ls.Store]:
    """A benchmark's ``--db`` and ``--queries``, and its store; the processor's vector extensions printed."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    print(flags())
    return args, ls.Store(args.db)


def image_vectors(store: ls.Store, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored image vectors (as stored) with their ids, and ``queries`` float32 queries near them."""
    ids, vectors = (np.concatenate(x) for x in zip(*iter_vectors(store, "image")))
    return ids, vectors, sample_queries(store, "image", queries, seed=2).astype(np.float32)  # numpy: no float64 upcast


def main() -> None:
    args, store = open_store(__doc__)
    ids, vectors, queries = image_vectors(store, args.queries)
    norms = np.linalg.norm(vectors, axis=1)
    held = ls.hold_vectors(store, "image")
    print(f"image vectors held in memory ({human(held.bytes)}) in {held.seconds:.1f} s")
    times = {"dot": [], "dot, copied read": [], "cosine": [], "scan only": [], "dot, held in memory": [], "numpy": []}
    same = {"dot": 0, "dot, copied read": 0, "cosine": 0, "dot, held in memory": 0}
    plans = set()
    for i, q in enumerate(queries):
        started = time.perf_counter()
        similarity = vectors @ (q / np.linalg.norm(q)) / norms  # cosine similarity to every row
        top = np.argpartition(-similarity, 10)[:10]
        truth = ids[top[np.argsort(-similarity[top])]].tolist()
        times["numpy"].append(time.perf_counter() - started)
        started = time.perf_counter()
        store.query(f"SELECT count() AS n FROM {store.table('laion')} WHERE NOT ignore(image_embedding) "
                    f"SETTINGS {', '.join(exact_search.scan_settings())}")
        times["scan only"].append(time.perf_counter() - started)
        ways = ("dot", "dot, copied read", "cosine", "dot, held in memory")
        for way in ways[i % 4:] + ways[:i % 4]:
            exact_search.MAX_UNIT_ERROR = -1.0 if way == "cosine" else 0.01
            exact_search.MMAP_MIN_BYTES = 0 if way == "dot, copied read" else MAPPED
            searching.held_copy = held_copy if way == "dot, held in memory" else (lambda store, column: None)
            started = time.perf_counter()
            found = ls.search(store, q, k=10, exact=True)
            times[way].append(time.perf_counter() - started)
            same[way] += found.column("id").to_pylist() == truth
            plans.add(found.plan)
    exact_search.MMAP_MIN_BYTES = MAPPED  # the filtered searches below read as laionsearch does
    p50 = {w: float(np.median(t)) * 1000 for w, t in times.items()}
    print(f"{len(vectors):,} rows stored as {stored_storage(store)}, {args.queries} queries, k=10; "
          f"plans seen: {', '.join(sorted(plans))}")
    print("| way | p50 | / numpy | same ids as numpy |")
    print("|---|---:|---:|---|")
    for way in times:
        agreed = f"{same[way]}/{args.queries}" if way in same else "-"
        print(f"| {way} | {p50[way]:.0f} ms | {p50[way] / p50['numpy']:.2f} | {agreed} |")
    print("\nExact search over the rows a filter keeps (`similarity >= T`, the plan for selective filters):")
    print("| share kept | dot | cosine | held in memory | same answers |")
    print("|---:|---:|---:|---:|---|")
    ways = ("dot", "cosine", "held in memory")
    for share in (0.5, 0.1, 0.01, 0.001):
        threshold = store.query("SELECT quantile({q:Float64})(similarity) AS t FROM laion WHERE NOT isNaN(similarity)",
                                {"q": 1 - share}).column("t")[0].as_py()
        spent, answers = {w: [] for w in ways}, {w: [] for w in ways}
        for i, q in enumerate(queries):
            for way in ways[i % 3:] + ways[:i % 3]:
                exact_search.MAX_UNIT_ERROR = -1.0 if way == "cosine" else 0.01
                searching.held_copy = held_copy if way == "held in memory" else (lambda store, column: None)
                started = time.perf_counter()
                found = ls.search(store, q, k=10, exact=True, min_similarity=threshold)
                spent[way].append(time.perf_counter() - started)
                answers[way].append(found.column("id").to_pylist())
        agreed = sum(a == b == c for a, b, c in zip(*(answers[w] for w in ways)))
        print(f"| {share:.1%} | " + " | ".join(f"{np.median(spent[w]) * 1000:.0f} ms" for w in ways) +
              f" | {agreed}/{len(queries)} |")
    ls.release_vectors(store, "image")

if __name__ == "__main__":
    main()

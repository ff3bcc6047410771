"""ANN benchmark: laionsearch's HNSW (ClickHouse) vs raw usearch, hnswlib and faiss, and exact search vs numpy.

Run by hand (not part of `make test`); needs `pip install -e '.[bench]'`:

    .venv/bin/python benchmarks/ann.py --rows 100000       # quick mode
    .venv/bin/python benchmarks/ann.py --rows 1000000      # the full benchmark (hours on 2 cores)

Every system gets the same synthetic clustered 512-d normalised vectors (one
LAION-format part from `laionsearch synth`, float16 widened to float32), the
guide's index parameters (bf16 where the library has it, M=64,
ef_construction=256), the same perturbed-row queries and the same exact ground
truth. Latency is single-query, sequential, through each library's Python API
(laionsearch: `laionsearch.search`, i.e. SQL through chDB).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import laionsearch as ls
from laionsearch.engine.params import vector_hex, vector_sql
from laionsearch.ops.evaluate import exact_top_k, sample_queries

from bench_common import recall, synthetic_part

M, EF_CONSTRUCTION = 64, 256


def timed(fn, queries):
    """(ids per query, latencies in ms)."""
    ids, times = [], []
    for q in queries:
        started = time.perf_counter()
        ids.append(np.asarray(fn(q)))
        times.append((time.perf_counter() - started) * 1000)
    return ids, np.array(times)


def report(rows, name, build, ef, found, times, truth, k):
    rows.append((name, build, ef, recall(found, truth, k), np.percentile(times, 50), 1000 / times.mean()))
    print(f"  {name:12s} ef={ef!s:5s} recall@{k}={rows[-1][3]:.3f} p50={rows[-1][4]:.2f} ms qps={rows[-1][5]:.0f}", flush=True)


def laionsearch_ann(store, queries, truth, efs, k, reuse, rows) -> None:
    """Build (unless reused) the guide's image index and measure ANN queries through `search` and ids-only SQL."""
    build = float("nan")  # not measured when the store is reused
    if not reuse or not ls.index_status(store):
        started = time.perf_counter()
        ls.create_index(store, "image", quantization="bf16", m=M, ef_construction=EF_CONSTRUCTION)
        build = time.perf_counter() - started
    parts_count = ls.index_status(store)[0].parts_total
    print(f"laionsearch build {build:.1f} s ({parts_count} data part(s))", flush=True)
    ls.search(store, queries[0], k=k)  # loads the index into the engine's cache
    for ef in efs:
        found, times = timed(lambda q: ls.search(store, q, k=k, ef=ef).column("id").to_numpy(), queries)
        report(rows, "laionsearch", build, ef, found, times, truth, k)
    # The same index through SQL returning only ids: separates the engine's per-query and
    # graph-search cost from reading url/caption/NSFW/similarity for the hits.
    ids_sql = (
        f"SELECT id FROM laion ORDER BY cosineDistance(image_embedding, {vector_sql('target')}) "
        "LIMIT {k:UInt32} SETTINGS hnsw_candidate_list_size_for_search = {ef:UInt64}"
    )
    for ef in efs:
        found, times = timed(
            lambda q: store.query(ids_sql, {"target": vector_hex(q), "k": k, "ef": ef}).column("id").to_numpy(),
            queries,
        )
        report(rows, "laionsearch ids only", build, ef, found, times, truth, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--efs", default="64,128,256")
    parser.add_argument("--workdir", default="bench-data")
    parser.add_argument(
        "--skip", default="",
        help="comma-separated systems to skip: laionsearch (its index and ANN queries; exact search still runs), "
        "usearch, hnswlib, faiss",
    )
    parser.add_argument(
        "--reuse-store", action="store_true",
        help="keep the indexed store an earlier run left in --workdir (no ingest, no index build: build time not measured)",
    )
    args = parser.parse_args()
    efs = [int(e) for e in args.efs.split(",")]
    skip = {name.strip() for name in args.skip.split(",")} - {""}
    work = Path(args.workdir).resolve()
    parts = synthetic_part(work, args.rows)
    vectors = np.load(parts / "img_emb" / "img_emb_0.npy").astype(np.float32)
    store_dir = work / f"ann-store-{args.rows}"
    reuse = args.reuse_store and store_dir.exists()
    if not reuse:
        subprocess.run(["rm", "-rf", str(store_dir)], check=True)
    store = ls.Store(store_dir)
    if not reuse:
        ls.ingest(store, parts)
    queries = sample_queries(store, "image", args.queries, seed=7)
    truth = exact_top_k(store, "image", queries, args.k)
    print(f"{args.rows:,} vectors, {len(queries)} queries, k={args.k}; {os.cpu_count()} cores, "
          f"{platform.platform()}, numpy {np.__version__}", flush=True)
    rows = []

    if "laionsearch" not in skip:
        laionsearch_ann(store, queries, truth, efs, args.k, reuse, rows)
    ids = np.arange(len(vectors), dtype=np.int64)  # row i of the part has id i (part 0)

    if "usearch" not in skip:
        from usearch.index import Index

        index = Index(ndim=vectors.shape[1], metric="cos", dtype="bf16", connectivity=M, expansion_add=EF_CONSTRUCTION)
        started = time.perf_counter()
        index.add(ids, vectors)
        build = time.perf_counter() - started
        print(f"usearch build {build:.1f} s", flush=True)
        for ef in efs:
            index.expansion_search = ef
            found, times = timed(lambda q: index.search(q, args.k).keys, queries)
            report(rows, "usearch", build, ef, found, times, truth, args.k)
        del index

    if "hnswlib" not in skip:
        import hnswlib

        index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
        index.init_index(max_elements=len(vectors), ef_construction=EF_CONSTRUCTION, M=M)
        started = time.perf_counter()
        index.add_items(vectors, ids)
        build = time.perf_counter() - started
        print(f"hnswlib build {build:.1f} s (float32)", flush=True)
        for ef in efs:
            index.set_ef(max(ef, args.k))
            found, times = timed(lambda q: index.knn_query(q, args.k)[0][0], queries)
            report(rows, "hnswlib", build, ef, found, times, truth, args.k)
        del index

    if "faiss" not in skip:
        import faiss

        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        index = faiss.IndexHNSWFlat(vectors.shape[1], M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        started = time.perf_counter()
        index.add(unit)
        build = time.perf_counter() - started
        print(f"faiss build {build:.1f} s (float32)", flush=True)
        for ef in efs:
            index.hnsw.efSearch = ef
            found, times = timed(lambda q: index.search(q[None, :], args.k)[1][0], queries)
            report(rows, "faiss", build, ef, found, times, truth, args.k)
        del index

    exact_queries = queries[:20]
    found, times = timed(lambda q: ls.search(store, q, k=args.k, exact=True).column("id").to_numpy(), exact_queries)
    report(rows, "laionsearch exact", 0.0, "-", found, times, truth[:20], args.k)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def numpy_exact(q):
        scores = unit @ (q / np.linalg.norm(q)).astype(np.float32)  # a float64 query would copy the matrix
        top = np.argpartition(-scores, args.k)[: args.k]
        return top[np.argsort(-scores[top])]

    found, times = timed(numpy_exact, exact_queries)
    report(rows, "numpy exact", 0.0, "-", found, times, truth[:20], args.k)

    print("\n| system | build (s) | ef | recall@10 | p50 (ms) | QPS |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, build, ef, rec, p50, qps in rows:
        print(f"| {name} | {build:.1f} | {ef} | {rec:.3f} | {p50:.2f} | {qps:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())

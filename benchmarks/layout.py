"""Table layout benchmark: granule and compression-block size vs ingest, disk, exact search and the hits' read.

Run by hand (not part of `make test`):

    .venv/bin/python benchmarks/layout.py --rows 1000000 --no-index   # ingest, disk, exact search, 10-row read
    .venv/bin/python benchmarks/layout.py --rows 100000               # plus HNSW build and ANN search
    .venv/bin/python benchmarks/layout.py --rows 1000000 --layouts "before,granule 256 + 16 KiB blocks"

An ANN query finds its ten hits in the HNSW graph, then reads url, caption, NSFW and
similarity for them: the engine decompresses every granule (and compression block) a
hit falls in. Smaller granules and blocks make that read cheaper, and may cost ingest
time, disk and full-scan (exact search) speed. Each layout gets its own database in one
chDB store, loaded from the same synthetic part; medians over 30 queries after a
warm-up (exact search: 10).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

import laionsearch as ls
from laionsearch.ops.evaluate import exact_top_k, sample_queries
from laionsearch.schema import TABLE, TABLE_SETTINGS, create_table_sql

from bench_common import median_ms, recall, synthetic_part

LAYOUTS = {
    "before": "index_granularity = 8192",
    "granule 1024": "index_granularity = 1024",
    "granule 256": "index_granularity = 256",
    "16 KiB blocks": "index_granularity = 8192, max_compress_block_size = 16384",
    "granule 256 + 16 KiB blocks": "index_granularity = 256, max_compress_block_size = 16384",
}
assert TABLE_SETTINGS in LAYOUTS.values(), "the default layout is one of those measured"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workdir", default="bench-data")
    parser.add_argument("--no-index", action="store_true", help="skip the HNSW build and ANN search")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated names from LAYOUTS")
    args = parser.parse_args()
    work = Path(args.workdir).resolve()
    parts = synthetic_part(work, args.rows)
    shutil.rmtree(work / "layout-store", ignore_errors=True)
    chosen = args.layouts.split(",")
    if unknown := set(chosen) - set(LAYOUTS):
        parser.error(f"unknown layouts {sorted(unknown)}; choose from {list(LAYOUTS)}")
    # A throwaway ingest first, so that no layout pays for reading the part's files cold.
    warmup = ls.Store(work / "layout-store", database="warmup")
    ls.ingest(warmup, parts)
    warmup.execute("DROP DATABASE warmup SYNC")  # and its background merges with it
    rng = np.random.default_rng(5)
    hits = [rng.choice(args.rows, 10, replace=False).tolist() for _ in range(30)]  # ids: part 0's id is its row
    queries = truth = None
    print(f"{args.rows:,} rows; medians in ms\n")
    print("| layout (SETTINGS) | ingest (s) | merge (s) | on disk (MB) | exact p50 | 10 hits' metadata p50 "
          "| HNSW build (s) | ANN p50, ef 64 | recall@10 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for number, name in enumerate(chosen):
        settings = LAYOUTS[name]
        store = ls.Store(work / "layout-store", database=f"layout{number}")
        store.execute(create_table_sql(store.table(TABLE), settings=settings))
        started = time.perf_counter()
        ls.ingest(store, parts)
        ingest_s = time.perf_counter() - started
        # Measure one merged data part per layout, not whatever background merges have reached.
        started = time.perf_counter()
        store.execute(f"OPTIMIZE TABLE {store.table(TABLE)} FINAL")
        merge_s = time.perf_counter() - started
        if queries is None:
            queries = sample_queries(store, "image", 30, seed=3)
            truth = exact_top_k(store, "image", queries, 10)
        (disk,) = store.query(
            "SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE database = {db:String} "
            "AND table = {t:String} AND active",
            {"db": store.database, "t": TABLE},
        ).to_pylist()
        exact = median_ms(lambda q: ls.search(store, q, k=10, exact=True), queries[:10])
        read = median_ms(
            lambda ids: store.query(
                f"SELECT url, caption, NSFW, similarity FROM {store.table(TABLE)} WHERE id IN {{ids:Array(Int64)}}",
                {"ids": ids},
            ),
            hits,
        )
        build = ann = rec = "-"
        if not args.no_index:
            started = time.perf_counter()
            ls.create_index(store, "image")
            build = f"{time.perf_counter() - started:.1f}"
            found = [ls.search(store, q, k=10, ef=64).column("id").to_numpy() for q in queries]
            rec = f"{recall(found, truth, 10):.3f}"
            ann = f"{median_ms(lambda q: ls.search(store, q, k=10, ef=64), queries):.1f}"
        print(f"| {name} (`{settings}`) | {ingest_s:.1f} | {merge_s:.1f} | {disk['b'] / 1e6:,.0f} | {exact:.0f} "
              f"| {read:.1f} | {build} | {ann} | {rec} |", flush=True)


if __name__ == "__main__":
    main()

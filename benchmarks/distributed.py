"""What the Distributed table costs: the same search through a one-shard Distributed table and on the table itself.

Run by hand (not part of `make test`), on an indexed embedded store, e.g. the one `concurrency.py` leaves:

    .venv/bin/python benchmarks/distributed.py --db /tmp/bench/concurrency-1000000-m16-efc64 --queries 300

The store is opened through the server code path (clickhouse-connect's chDB backend) with a
server config whose cluster has one shard, this process (``system.clusters.is_local = 1``):
the layout `--cluster` makes, with no network. A Distributed table over the store's `laion` is
added for the run and dropped after it. The same queries, interleaved one by one, run the same
SQL against both tables: ANN (the vector index) and, for fewer queries, exact search. Printed:
p50/p95 in ms per table and the p50 difference.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import laionsearch as ls
from laionsearch.engine.params import vector_hex, vector_sql
from laionsearch.ops.evaluate import sample_queries

CONFIG = """<clickhouse><tcp_port>9000</tcp_port><remote_servers><bench><shard><replica>
<host>localhost</host><port>9000</port></replica></shard></bench></remote_servers></clickhouse>"""
DISTRIBUTED = "laion_bench_distributed"


def sql(table: str, exact: bool) -> str:
    return (f"SELECT id, url, caption, NSFW, similarity, cosineDistance(image_embedding, {vector_sql('target')}) "
            f"AS distance FROM {table} ORDER BY distance ASC LIMIT 10" + (" SETTINGS use_skip_indexes = 0" if exact else ""))


def measure(store: ls.Store, vectors: np.ndarray, exact: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"laion": [], DISTRIBUTED: []}
    answers = {}
    for i, v in enumerate(vectors):
        for table in (("laion", DISTRIBUTED) if i % 2 == 0 else (DISTRIBUTED, "laion")):
            started = time.perf_counter()
            ids = store.query(sql(table, exact), {"target": vector_hex(v)}).column("id").to_pylist()
            times[table].append((time.perf_counter() - started) * 1000)
            answers[table] = ids
        if answers["laion"] != answers[DISTRIBUTED]:
            raise SystemExit(f"query {i}: the two tables answered differently")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="An indexed embedded store.")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--exact-queries", type=int, default=20)
    args = parser.parse_args()
    config = Path(tempfile.mkdtemp()) / "bench-cluster.xml"
    config.write_text(CONFIG)
    store = ls.Store(f"chdb://{Path(args.db).resolve()}?config-file={config}")
    (local,) = store.query("SELECT is_local FROM system.clusters WHERE cluster = 'bench'").column("is_local").to_pylist()
    assert local == 1, "the one shard must be this process"
    store.execute(f"DROP TABLE IF EXISTS {DISTRIBUTED}")
    store.execute(f"CREATE TABLE {DISTRIBUTED} AS laion ENGINE = Distributed('bench', 'default', 'laion', part)")
    try:
        rows = store.query("SELECT count() AS n FROM laion").column("n")[0].as_py()
        index = store.query("SELECT type_full FROM system.data_skipping_indices WHERE table = 'laion' "
                            "AND name = 'image_index'").column("type_full").to_pylist()
        vectors = sample_queries(store, "image", args.queries + 1, seed=5)
        for v in vectors[:1]:  # load the graphs before timing
            store.query(sql("laion", False), {"target": vector_hex(v)})
        print(f"{rows:,} rows, index {index[0] if index else 'none'}; one-shard Distributed vs the table")
        print("| search | queries | laion p50 | Distributed p50 | laion p95 | Distributed p95 | p50 difference |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for exact, queries in ((False, vectors[1:]), (True, vectors[1: 1 + args.exact_queries])):
            times = measure(store, queries, exact)
            plain, dist = np.array(times["laion"]), np.array(times[DISTRIBUTED])
            print(f"| {'exact' if exact else 'ANN'} | {len(queries)} | {np.median(plain):.2f} ms | "
                  f"{np.median(dist):.2f} ms | {np.percentile(plain, 95):.2f} ms | {np.percentile(dist, 95):.2f} ms | "
                  f"{np.median(dist) - np.median(plain):+.2f} ms |")
    finally:
        store.execute(f"DROP TABLE IF EXISTS {DISTRIBUTED}")


if __name__ == "__main__":
    main()

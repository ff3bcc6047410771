"""A way not built yet: exact search on a float32 store through a bfloat16 copy of the column.

The float32 column takes the engine ~2x numpy's whole search just to read (docs/benchmarks.md,
"Exact search by dot product"). This measures what scanning a bfloat16 copy (half the bytes) and
ranking the few candidates it cannot tell apart by the float32 vectors would give, answers checked
against `search(..., exact=True)`. It changes the store: run it on a disposable copy of a float32
store ingested by this version, e.g.

    .venv/bin/laionsearch --db /tmp/bench/exact-copy ingest /tmp/bench/ann-1000000
    .venv/bin/python benchmarks/exact_copy.py --db /tmp/bench/exact-copy --queries 30

It adds `image_bf16 Array(BFloat16) CODEC(NONE)`, the engine's CAST of `image_embedding` (which
truncates), and measures the largest |v - copy(v)| over the rows. Per query: the scan of the copy
keeps the best 260 rows by dot product with the query rounded to bfloat16; a row's cosine similarity
lies within that dot product +- (the copy's error + the query's rounding + float32 arithmetic),
divided by the length bounds; the rows whose upper bound reaches the 10th best lower bound are
ranked by `cosineDistance` on the float32 column; the page counts as proven when no row left out
can beat its last row. Printed: p50 of the two statements, of `search(..., exact=True)` (what
laionsearch does today) and of numpy, the candidates needed, how many pages were proven, and
whether the answers equal today's.
"""

from __future__ import annotations

import time

import numpy as np

import laionsearch as ls
from laionsearch.engine.params import vector_hex, vector_sql
from laionsearch.ops.exact import arithmetic_error, scan_settings
from laionsearch.schema import RESULT_COLUMNS, stored_storage, to_bfloat16

from exact import image_vectors, open_store

K, KEEP = 10, 260


def add_copy(store: ls.Store) -> tuple[float, float]:
    """Add and fill the bfloat16 copy (once); its largest error and the column's largest |length - 1|."""
    if "image_bf16" not in store.query("SELECT name FROM system.columns WHERE table = 'laion'").column("name").to_pylist():
        started = time.perf_counter()
        store.execute("ALTER TABLE laion ADD COLUMN image_bf16 Array(BFloat16) "
                      "MATERIALIZED CAST(image_embedding AS Array(BFloat16)) CODEC(NONE)")
        store.execute("ALTER TABLE laion MATERIALIZE COLUMN image_bf16 SETTINGS mutations_sync = 2")
        print(f"copy added and filled in {time.perf_counter() - started:.1f} s")
    row = store.query("SELECT max(L2Distance(image_embedding, CAST(image_bf16 AS Array(Float32)))) AS copy_error, "
                      "max(abs(L2Norm(image_embedding) - 1)) AS length_error FROM laion").to_pylist()[0]
    return float(row["copy_error"]), float(row["length_error"])


def main() -> None:
    args, store = open_store(__doc__)
    if stored_storage(store) != "float32":
        raise SystemExit(f"{args.db} stores {stored_storage(store)}, not float32")
    copy_error, length_error = add_copy(store)
    ids, vectors, queries = image_vectors(store, args.queries)
    print(f"{len(ids):,} rows; copy error {copy_error:.2e}, length error {length_error:.2e}")
    slack = arithmetic_error(vectors.shape[1])
    times = {"scan of the copy": [], "float32 candidates": [], "both": [], "search today": [], "numpy": []}
    needed, proven, same = [], 0, 0
    for q in queries:
        unit = q / np.linalg.norm(q)
        started = time.perf_counter()
        np.argpartition(-(vectors @ unit), K)[:K]
        times["numpy"].append(time.perf_counter() - started)
        started = time.perf_counter()
        today = ls.search(store, q, k=K, exact=True)
        times["search today"].append(time.perf_counter() - started)

        scanned = to_bfloat16(unit)
        started = time.perf_counter()
        candidates = store.query(
            f"SELECT id, dotProduct(image_bf16, CAST({vector_sql('s')} AS Array(BFloat16))) AS dot FROM laion "
            f"ORDER BY dot DESC LIMIT {KEEP} SETTINGS {', '.join(scan_settings())}", {"s": vector_hex(scanned)})
        middle = time.perf_counter()
        dots = candidates.column("dot").to_numpy().astype(np.float64)
        spread = copy_error + float(np.linalg.norm(unit - scanned)) * (1 + copy_error) + 3 * slack
        lower, upper = (dots - spread) / (1 + length_error), (dots + spread) / (1 - length_error)
        need = upper >= np.sort(lower)[::-1][K - 1]
        found = store.query(
            f"SELECT {', '.join(RESULT_COLUMNS)}, cosineDistance(image_embedding, {vector_sql('t')}) AS distance "
            "FROM laion WHERE id IN {ids:Array(Int64)} ORDER BY distance LIMIT {k:UInt32}",
            {"t": vector_hex(unit), "ids": candidates.column("id").to_numpy()[need].tolist(), "k": K})
        ended = time.perf_counter()
        times["scan of the copy"].append(middle - started)
        times["float32 candidates"].append(ended - middle)
        times["both"].append(ended - started)
        needed.append(int(need.sum()))
        last = found.column("distance")[found.num_rows - 1].as_py()
        proven += bool(not (~need).any() or upper[~need].max() < 1.0 - last - slack)
        same += found.column("id").to_pylist() == today.column("id").to_pylist()
    p50 = {way: float(np.median(t)) * 1000 for way, t in times.items()}
    print(f"{args.queries} queries, k={K}; candidates needed: median {np.median(needed):.0f}, most {max(needed)}; "
          f"pages proven {proven}/{args.queries}; same ids as today {same}/{args.queries}")
    print("| way | p50 | / numpy |")
    print("|---|---:|---:|")
    for way, ms in p50.items():
        print(f"| {way} | {ms:.0f} ms | {ms / p50['numpy']:.2f} |")


if __name__ == "__main__":
    main()

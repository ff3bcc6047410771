"""Filtered ANN search: recall and latency at 50%, 5%, 1% and 0.1% selectivity, against exact filtered search.

Run by hand (not part of `make test`), on an indexed store, e.g. the 1M-row store the plan check
leaves (docs/benchmarks.md):

    .venv/bin/python benchmarks/filtered.py --db /tmp/bench/plancheck --queries 100

A filter `similarity >= T` with T the (1 - s) quantile of the stored similarities keeps a
share s of the rows. For each s: p50 of `search(..., min_similarity=T)` (the filter plan
laionsearch picks: post-filtering the index's candidates, or exact search over the matching
rows), its recall@10 against exact filtered search (`exact=True`), whether every search
returned 10 rows, and the plans used. Unfiltered ANN on the same queries is the reference.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

import laionsearch as ls
from laionsearch.ops.evaluate import sample_queries

SHARES = (0.5, 0.05, 0.01, 0.001)


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--ef", type=int, default=None, help="HNSW candidate list size (default: the engine's 256)")
    args = parser.parse_args()
    store = ls.Store(args.db)
    queries = sample_queries(store, "image", args.queries, seed=9)
    ls.search(store, queries[0], k=args.k)  # graphs into the cache before timing
    plain = [timed(lambda: ls.search(store, v, k=args.k, ef=args.ef))[1] for v in queries]
    plain_recall = np.mean([len(set(ls.search(store, v, k=args.k, ef=args.ef).column('id').to_pylist()) & set(
        ls.search(store, v, k=args.k, exact=True).column('id').to_pylist())) / args.k for v in queries])
    rows = store.query("SELECT count() AS n FROM laion").column("n")[0].as_py()
    print(f"{rows:,} rows, {args.queries} queries, k={args.k}, ef {args.ef or 256}; unfiltered ANN p50 "
          f"{np.median(plain):.1f} ms, recall@{args.k} {plain_recall:.3f}")
    print("| share kept | threshold | rows kept | p50 | p50 / unfiltered | recall@10 vs exact filtered | "
          "always k rows | plans |")
    print("|---:|---:|---:|---:|---:|---:|---|---|")
    for share in SHARES:
        threshold = store.query("SELECT quantile({q:Float64})(similarity) AS t FROM laion WHERE NOT isNaN(similarity)",
                                {"q": 1 - share}).column("t")[0].as_py()
        kept = store.query("SELECT countIf(similarity >= {t:Float32}) AS n FROM laion",
                           {"t": threshold}).column("n")[0].as_py()
        times, recalls, full, plans = [], [], True, collections.Counter()
        for v in queries:
            found, ms = timed(lambda: ls.search(store, v, k=args.k, min_similarity=threshold, ef=args.ef))
            truth = ls.search(store, v, k=args.k, min_similarity=threshold, exact=True).column("id").to_pylist()
            times.append(ms)
            got = found.column("id").to_pylist()
            recalls.append(len(set(got) & set(truth)) / max(len(truth), 1))
            full &= len(got) == min(args.k, kept)
            plans[found.plan.split(" (")[0]] += 1
        p50 = float(np.median(times))
        shown = ", ".join(f"{plan} ×{n}" for plan, n in plans.most_common())
        print(f"| {share:.1%} | {threshold:.4f} | {kept:,} | {p50:.1f} ms | {p50 / np.median(plain):.1f}x | "
              f"{np.mean(recalls):.3f} | {'yes' if full else 'NO'} | {shown} |")


if __name__ == "__main__":
    main()

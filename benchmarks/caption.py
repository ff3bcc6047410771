"""`--caption-has` with and without the caption's text index, and what building the index costs.

Run by hand (not part of `make test`), on an indexed store, e.g. the plan check's 1M-row store:

    .venv/bin/python benchmarks/caption.py --db /tmp/bench/plancheck --queries 50

The same searches (stored vectors, perturbed; k = 10; `Filters(caption_has=WORDS)` for a rare and
a common pair of caption words) run before and after `index create --column caption`; the index
is dropped again at the end. Printed: rows matching, the plan, p50, and whether both runs gave the
same rows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import laionsearch as ls
from laionsearch.ops.evaluate import sample_queries

WORDS = ("violin sketch", "photo")


def run(store, queries, words):
    times, answers, plans = [], [], set()
    for v in queries:
        started = time.perf_counter()
        found = ls.search(store, v, k=10, filters=ls.Filters(caption_has=words))
        times.append((time.perf_counter() - started) * 1000)
        answers.append(found.column("id").to_pylist())
        plans.add(found.plan.split(" (")[0])
    return float(np.median(times)), answers, plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    store = ls.Store(args.db)
    queries = sample_queries(store, "image", args.queries, seed=3)
    ls.search(store, queries[0], k=10)
    before = {w: run(store, queries, w) for w in WORDS}
    started = time.perf_counter()
    ls.create_index(store, "caption")
    build = time.perf_counter() - started
    (status,) = [s for s in ls.index_status(store) if s.column == "caption"]
    after = {w: run(store, queries, w) for w in WORDS}
    ls.drop_index(store, "caption")
    rows = store.query("SELECT count() AS n FROM laion").column("n")[0].as_py()
    print(f"{rows:,} rows; caption text index built in {build:.1f} s, {status.bytes_on_disk / 1e6:,.1f} MB on disk")
    print("| words | rows matching | plan | p50 without index | p50 with index | same rows |")
    print("|---|---:|---|---:|---:|---|")
    for w in WORDS:
        matching = store.query("SELECT count() AS n FROM laion WHERE hasAllTokens(lower(caption), {t:Array(String)})",
                               {"t": w.split()}).column("n")[0].as_py()
        (p0, a0, plans), (p1, a1, _) = before[w], after[w]
        print(f"| {w} | {matching:,} | {', '.join(sorted(plans))} | {p0:.1f} ms | {p1:.1f} ms | "
              f"{'yes' if a0 == a1 else 'no'} |")


if __name__ == "__main__":
    main()

"""ANN pages: how many rows come back on two pages, and how many of one deep search no page shows.

Run by hand (not part of `make test`) on an indexed store, e.g.:

    .venv/bin/laionsearch synth /tmp/bench/p100k --rows 100000
    .venv/bin/laionsearch --db /tmp/bench/s100k ingest /tmp/bench/p100k
    .venv/bin/laionsearch --db /tmp/bench/s100k index create --column image
    .venv/bin/python benchmarks/ann_pages.py --db /tmp/bench/s100k --ef 16
    .venv/bin/python benchmarks/ann_pages.py --db /tmp/bench/s100k

For each query (stored vectors, slightly moved: ``sample_queries``), ``--pages`` pages of ``--k`` rows
are fetched one by one with ``offset``, as the web page does while scrolling, and compared with one
search for all of them at once. Each ANN page is a search of its own: once offset + k passes the
search's ef, its candidate list grows with the page, so a row may move across a page boundary.
"""

from __future__ import annotations

import argparse

import laionsearch as ls
from laionsearch.ops.evaluate import sample_queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--ef", type=int, default=None, help="the search's ef (default: the engine's, 256)")
    args = parser.parse_args()
    store = ls.Store(args.db)
    repeated = missing = 0
    for q in sample_queries(store, "image", args.queries, seed=3):
        paged = [i for o in range(0, args.k * args.pages, args.k)
                 for i in ls.search(store, q, k=args.k, offset=o, ef=args.ef).column("id").to_pylist()]
        whole = ls.search(store, q, k=args.k * args.pages, ef=args.ef).column("id").to_pylist()
        repeated += len(paged) - len(set(paged))
        missing += len(set(whole) - set(paged))
    shown = args.queries * args.k * args.pages
    print(f"{args.queries} queries x {args.pages} pages of {args.k}, ef {args.ef or 'default'}: "
          f"{repeated} of {shown:,} rows shown twice, {missing} rows of the one-search answer on no page")


if __name__ == "__main__":
    main()

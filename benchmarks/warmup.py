"""The first query after a start, with and without loading the graphs first (what `serve` now does).

Run by hand (not part of `make test`), on an indexed store, e.g. the one `concurrency.py` leaves:

    .venv/bin/python benchmarks/warmup.py --db /tmp/bench/concurrency-1000000-m16-efc64 --runs 3

Each run is a new process (the cache is the process's): open the store, then either
search at once, or `indexcache.warm` first and then search; the time of that first
search, and of the warm-up itself, are printed. Medians over --runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, sys, time
import laionsearch as ls
from laionsearch.ops.indexcache import warm
store = ls.Store(sys.argv[1])
warm_s = warm(store).seconds if sys.argv[2] == "warm" else 0.0
started = time.perf_counter()
ls.search_like(store, 12, k=10)
print(json.dumps({"warm_s": warm_s, "first_ms": (time.perf_counter() - started) * 1000}))
"""


def run(db: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, db, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("| start | warm-up (s) | first search (ms) |")
    print("|---|---:|---:|")
    for mode in ("cold", "warm"):
        results = [run(args.db, mode) for _ in range(args.runs)]
        print(f"| {mode} | {statistics.median(r['warm_s'] for r in results):.2f} | "
              f"{statistics.median(r['first_ms'] for r in results):.1f} |")


if __name__ == "__main__":
    main()

"""Ingest benchmark: the ClickHouse guide's preparation vs `laionsearch ingest`.

Run by hand (not part of `make test`):

    make bench                       # or: .venv/bin/python benchmarks/ingest.py
    .venv/bin/python benchmarks/ingest.py --small-rows 20000 --skip-full   # quick look

In one run, on the same synthetic LAION-format part (``--small-rows``, default 100,000):
  1. the guide's preparation: load both .npy files and the parquet file with
     numpy/pandas, merge by position, turn each vector into a Python list, replace
     quotes in captions, write one CSV (the steps of the guide's process.py);
  2. loading that CSV into the guide's ``laion`` table in chDB;
  3. ``laionsearch ingest`` of the same part.
Then ``laionsearch ingest`` of one full-size part (``--full-rows``, default 1,000,448).
Each step runs in its own process; wall time and that process's peak RSS are reported
as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

GUIDE_TABLE = """CREATE TABLE laion (
    id Int64, url String, caption String, NSFW String, similarity Float32,
    image_embedding Array(Float32), text_embedding Array(Float32)
) ENGINE = MergeTree ORDER BY id SETTINGS index_granularity = 8192"""


def guide_prepare(folder: str, part: str) -> None:
    """The guide's process.py steps, on the flat files of one part in ``folder``."""
    import numpy as np
    import pandas as pd

    os.chdir(folder)
    images = np.load(f"img_emb_{part}.npy")
    texts = np.load(f"text_emb_{part}.npy")
    frame = pd.read_parquet(f"metadata_{part}.parquet")
    frame = pd.concat(
        [frame, pd.DataFrame({"image_embedding": [*images]}), pd.DataFrame({"text_embedding": [*texts]})],
        axis=1,
        copy=False,
    )
    frame = frame[["url", "caption", "NSFW", "similarity", "image_embedding", "text_embedding"]]
    frame["image_embedding"] = frame["image_embedding"].apply(lambda v: v.tolist())
    frame["text_embedding"] = frame["text_embedding"].apply(lambda v: v.tolist())
    # The guide strips quotes; its lambda fails on null captions, which real parts have, so map them to '' first.
    frame["caption"] = frame["caption"].fillna("").apply(lambda c: c.replace("'", " ").replace('"', " "))
    frame.to_csv(f"{part}.csv", header=False)
    # (The guide then deletes the raw files; kept here so the next steps can read them.)


def guide_load(csv_path: str, db: str) -> None:
    """Load the guide's CSV into the guide's table in a fresh chDB store."""
    from chdb import session

    sess = session.Session(db)
    sess.query(GUIDE_TABLE)
    sess.query(f"INSERT INTO laion SELECT * FROM file('{csv_path}', CSV)")
    rows = sess.query("SELECT count() FROM laion", "CSV").bytes().decode().strip()
    print(f"loaded {rows} rows", file=sys.stderr)


def measure(label: str, rows: int, argv: list[str]) -> dict:
    """Run ``argv`` in a child process; return wall seconds and the child's peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{err[-2000:]}")
    return {"step": label, "rows": rows, "seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "out": (out + err).strip()}


def laionsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "laionsearch", *args]


def synth(folder: Path, rows: int) -> None:
    if not (folder / "metadata" / "metadata_0.parquet").exists():
        subprocess.run(laionsearch("synth", str(folder), "--parts", "0", "--rows", str(rows)), check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="bench-data", help="scratch folder (parts, CSV, stores)")
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--full-rows", type=int, default=1_000_448)
    parser.add_argument("--skip-full", action="store_true", help="skip the full-size part")
    args = parser.parse_args()

    work = Path(args.workdir).resolve()
    small = work / f"small-{args.small_rows}"
    synth(small, args.small_rows)
    flat = work / "flat"
    shutil.rmtree(flat, ignore_errors=True)
    flat.mkdir(parents=True)
    for sub in ("img_emb", "text_emb", "metadata"):
        for f in (small / sub).iterdir():
            shutil.copy(f, flat / f.name)
    for store in ("guide-store", "small-store", "full-store"):
        shutil.rmtree(work / store, ignore_errors=True)

    me = [sys.executable, str(Path(__file__).resolve())]
    results = [
        measure("guide: process.py (npy + parquet -> CSV)", args.small_rows, me + ["_prepare", str(flat), "0"]),
        measure("guide: load CSV into chDB", args.small_rows, me + ["_load", str(flat / "0.csv"), str(work / "guide-store")]),
        measure("laionsearch ingest", args.small_rows, laionsearch("--db", str(work / "small-store"), "ingest", str(small))),
    ]
    csv_gb = (flat / "0.csv").stat().st_size / 1e9
    if not args.skip_full:
        full = work / f"full-{args.full_rows}"
        synth(full, args.full_rows)
        results.append(
            measure("laionsearch ingest, full-size part", args.full_rows, laionsearch("--db", str(work / "full-store"), "ingest", str(full)))
        )

    guide_seconds = results[0]["seconds"] + results[1]["seconds"]
    ours = results[2]["seconds"]
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    print(f"guide CSV for {args.small_rows:,} rows: {csv_gb:.2f} GB\n")
    print("| step | rows | seconds | rows/s | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['step']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | {r['rss_mb']:,.0f} |")
    print(f"\nguide total {guide_seconds:.1f} s vs laionsearch {ours:.1f} s: {guide_seconds / ours:.1f}x the throughput")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_prepare":
        guide_prepare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_load":
        guide_load(sys.argv[2], sys.argv[3])
    else:
        main()

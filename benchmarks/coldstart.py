"""Cold-process CLI timings: what a user waits for when typing a command (issue: a fast first query).

Run by hand (not part of `make test`):

    .venv/bin/python benchmarks/coldstart.py --rows 100000 --runs 5

Each command runs as a new `laionsearch` process (wall time, median of --runs,
after one untimed run that warms the OS file cache) on a store of --rows
synthetic rows: `--help`, `info`, `search --like-id`, and `search --text` with a
ViT-B/32-sized random CLIP on the torch runtime and on the ONNX runtime (its
one-time conversion is done and timed separately first). With --old-src DIR (the
`src` of a worktree of an earlier commit) each command also runs on that code, in
the same run, for a ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cli(*args: str, env: dict | None = None) -> float:
    """Wall time of one `laionsearch ARGS` process, in seconds (it must succeed)."""
    started = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "laionsearch"), *args], capture_output=True, text=True,
                          env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"laionsearch {' '.join(args)} failed: {proc.stderr}")
    return elapsed


def vector_extensions() -> str:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "neither avx2 nor avx512"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="folder for the store and model (default: a temp dir)")
    parser.add_argument("--old-src", type=Path, default=None, help="src folder of earlier code to compare with")
    args = parser.parse_args()

    from laionsearch.clip.randomclip import save_random_clip

    work = args.work or Path(tempfile.mkdtemp(prefix="coldstart-"))
    env = {**os.environ, "LAIONSEARCH_CACHE": str(work / "cache")}
    db = str(work / f"store-{args.rows}")
    model = work / "vit-b-32"
    if not (model / "config.json").exists():
        save_random_clip(model, size="vit-b-32")
    if not Path(db).exists():  # made by the CLI too: this process must not hold the store open
        cli("synth", str(work / "parts"), "--rows", str(args.rows), "--seed", "1", env=env)
        cli("--db", db, "ingest", str(work / "parts"), env=env)
    text = ["search", "--text", "a dog and a cat", "--model", str(model), "-k", "10", "--format", "json"]
    convert_s = cli("--db", db, *text, env={**env, "LAIONSEARCH_CLIP_RUNTIME": "onnx"})

    commands = {
        "--help": ["--help"],
        "info": ["--db", db, "info", "--format", "json"],
        "search --like-id": ["--db", db, "search", "--like-id", "12", "-k", "10", "--format", "json"],
        "search --text (torch runtime)": ["--db", db, *text],
        "search --text (onnx runtime)": ["--db", db, *text],
    }
    print(f"machine: {os.cpu_count()} cores, {vector_extensions()}; store: {args.rows:,} rows; "
          f"median of {args.runs} cold processes; first search --text on onnx, converting the model: {convert_s:.1f} s")
    old_env = {**env, "PYTHONPATH": str(args.old_src.resolve())} if args.old_src else None
    print("| command | seconds | earlier code (s) |" if old_env else "| command | seconds |")
    print("|---|---:|---:|" if old_env else "|---|---:|")
    for name, command in commands.items():
        runtime = {"LAIONSEARCH_CLIP_RUNTIME": "torch" if "torch" in name else "onnx"}
        cells = [f"{median_cold(command, {**env, **runtime}, args.runs):.2f}"]
        if old_env:
            cells.append(f"{median_cold(command, old_env, args.runs):.2f}" if "onnx" not in name else "-")
        print(f"| `{name}` | {' | '.join(cells)} |")


def median_cold(command: list[str], env: dict, runs: int) -> float:
    cli(*command, env=env)  # warm the file cache
    return statistics.median(cli(*command, env=env) for _ in range(runs))


if __name__ == "__main__":
    main()

"""Helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`, so this imports as a sibling)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import laionsearch as ls


def synthetic_part(work: Path, rows: int) -> Path:
    """Folder of the one synthetic LAION-format part (seed 1) every vector benchmark uses, made once per size."""
    parts = work / f"ann-{rows}"
    if not (parts / "metadata" / "metadata_0.parquet").exists():
        ls.synth_parts(parts, [0], ls.SynthSpec(rows=rows, seed=1))
    return parts


def median_ms(fn, args) -> float:
    """Median wall time of ``fn(a)`` over ``args``, in ms, after one untimed warm-up call."""
    fn(args[0])
    times = []
    for a in args:
        started = time.perf_counter()
        fn(a)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def recall(found, truth, k: int) -> float:
    """Mean fraction of each query's true top-k found in its first k results."""
    return float(np.mean([len(np.intersect1d(f[:k], t)) / k for f, t in zip(found, truth)]))

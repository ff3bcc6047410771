"""Near-duplicates out of a result: the same URL, or (nearly) the same image.

LAION holds many copies of one picture under different URLs and captions. ``url`` keeps the
best-ranked row of each URL; ``image`` drops a row whose embedding is within cosine distance
``DEDUP_DISTANCE`` of a better-ranked kept row's (clip-retrieval's rule and threshold).
``deduplicated`` fetches more rows than asked until k distinct ones remain or no more exist.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from .results import SearchResult, plan_of, with_plan

DEDUP_KINDS = ("url", "image")
#: clip-retrieval's default: closer than this, two images count as one.
DEDUP_DISTANCE = 0.06


def deduplicated(fetch: Callable[[int, int, bool], SearchResult], k: int, offset: int, kind: str,
                 with_vectors: bool, max_rows: int) -> SearchResult:
    """Rows ``offset`` to ``offset + k`` of the distinct rows, in order; ``fetch(n, 0, vectors)`` gives the
    first ``n`` rows of the search (with their embeddings when asked), ``n`` at most ``max_rows``."""
    depth = offset + k
    n = min(max_rows, max(2 * depth, 20))
    while True:
        found = fetch(n, 0, kind == "image" or with_vectors).table
        keep = distinct_rows(found, kind)
        if len(keep) >= depth or found.num_rows < n or n == max_rows:
            break
        n = min(max_rows, n * 4)
    rows = found.take(pa.array(keep[offset:depth], pa.int64()))
    if not with_vectors and "embedding" in rows.column_names:
        rows = rows.drop_columns(["embedding"])
    dropped = found.num_rows - len(keep)
    return with_plan(rows, f"{plan_of(found)}; dedup {kind}: {dropped} of the first {found.num_rows} dropped")


def distinct_rows(table: pa.Table, kind: str) -> list[int]:
    """Positions of the rows that are not duplicates of an earlier (better-ranked) row."""
    if kind == "url":
        seen: set[str] = set()
        return [i for i, url in enumerate(table.column("url").to_pylist()) if not (url in seen or seen.add(url))]
    if table.num_rows == 0:
        return []
    flat = table.column("embedding").combine_chunks()
    vectors = flat.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(table.num_rows, -1)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    close = (unit @ unit.T) > 1 - DEDUP_DISTANCE
    kept = np.zeros(table.num_rows, dtype=bool)
    for i in range(table.num_rows):
        kept[i] = not np.any(close[i, :i] & kept[:i])
    return np.flatnonzero(kept).tolist()

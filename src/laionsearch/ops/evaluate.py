"""Recall and latency of ANN search against exact search, per ``ef`` (how users pick parameters)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import ArgumentError, IndexingError, QueryError
from .index import index_status, indexed_columns
from ..progress import Progress
from ..cluster import placement
from ..schema import ID_STRIDE, TABLE, as_float32, data_parts, row_id, stored_dim, stored_parts
from .search import embedding_column, search
from ..store import Store

DEFAULT_EFS = (32, 64, 128, 256, 512)
#: Where ``evaluate`` keeps its runs.
EVALS = "laion_evals"


@dataclass(frozen=True)
class EvalRow:
    """Quality and speed of one search setting over the query set."""

    setting: str  # "ef=64" or "exact"
    recall: float  # mean recall@k against exact search
    p50_ms: float
    p95_ms: float
    p99_ms: float
    qps: float  # sequential single-client queries per second
    #: On a cluster: (shard, recall of the true neighbours that shard holds), which tells a
    #: shard whose index is worse (or missing) from the rest.
    by_shard: tuple[tuple[int, float], ...] = ()


def evaluate(
    store: Store,
    *,
    column: str = "image",
    queries: int = 200,
    k: int = 10,
    efs: Sequence[int] = DEFAULT_EFS,
    queries_file: str | Path | None = None,
    exact_queries: int = 20,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[EvalRow]:
    """Measure recall@k and latency of ANN search at each ``ef``, plus exact search for reference.

    Queries are ``queries_file`` (.npy of shape (n, dim)) or stored rows'
    vectors, picked at random and perturbed slightly so they are not in the data.
    """
    if column not in indexed_columns(store):
        raise IndexingError(f"no index on the {column} column; `laionsearch index create --column {column}` first")
    if queries < 1 or k < 1 or not efs:
        raise ArgumentError("--queries and -k must be at least 1, and --ef needs at least one value")
    progress = progress or Progress()
    vectors = _load_queries(queries_file) if queries_file else sample_queries(store, column, queries, seed)
    truth = exact_top_k(store, column, vectors, k, progress)
    shards = _shards_of(store, truth)
    rows = []
    for ef in efs:
        progress.start(f"ef={ef}", len(vectors))
        rows.append(_measure(store, column, vectors, truth, shards, k, f"ef={ef}", dict(ef=ef), progress))
        progress.finish()
    progress.start("exact", min(exact_queries, len(vectors)))
    rows.append(_measure(store, column, vectors[:exact_queries], truth, shards, k, "exact", dict(exact=True),
                         progress))
    progress.finish()
    _record(store, column, k, len(vectors), rows)
    return rows


@dataclass(frozen=True)
class EvalRun:
    """A recorded ``evaluate`` run: when, on what, and its rows."""

    at: str  # UTC, ISO 8601
    column: str
    k: int
    queries: int
    rows: int  # rows in the store then
    index: str  # the index definition then
    results: list[EvalRow]


def last_eval(store: Store) -> EvalRun | None:
    """The most recent ``evaluate`` run recorded in the store, or None."""
    if not store.has_table(EVALS):
        return None
    table = store.query(
        f"SELECT * FROM {store.table(EVALS)} WHERE at = (SELECT max(at) FROM {store.table(EVALS)}) ORDER BY position", {}
    ).to_pylist()
    if not table:
        return None
    first = table[0]
    return EvalRun(
        at=first["at"].strftime("%Y-%m-%dT%H:%M:%SZ"), column=first["column"], k=first["k"],
        queries=first["queries"], rows=first["rows"], index=first["index_definition"],
        results=[EvalRow(r["setting"], r["recall"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["qps"]) for r in table],
    )


def _record(store: Store, column: str, k: int, queries: int, results: list[EvalRow]) -> None:
    """Keep the run in the store (for the web page's store view); a read-only server user keeps nothing."""
    definition = next((s.definition for s in index_status(store) if s.column == column), "")
    total = sum(stored_parts(store).values())
    try:
        store.execute(
            f"CREATE TABLE IF NOT EXISTS {store.table(EVALS)} (at DateTime64(3, 'UTC'), position UInt16, "
            "column String, k UInt32, queries UInt32, rows UInt64, index_definition String, setting String, recall Float64, "
            "p50_ms Float64, p95_ms Float64, p99_ms Float64, qps Float64) ENGINE = MergeTree ORDER BY (at, position)"
        )
        at = datetime.now(timezone.utc).replace(tzinfo=None)
        store.insert_arrow(EVALS, pa.Table.from_pylist([
            {"at": at, "position": i, "column": column, "k": k, "queries": queries, "rows": total,
             "index_definition": definition, **_recorded(row)} for i, row in enumerate(results)
        ]))
    except QueryError as exc:
        if not any(code in str(exc) for code in ("READONLY", "ACCESS_DENIED", "NOT_ENOUGH_PRIVILEGES")):
            raise


def _recorded(row: EvalRow) -> dict:
    return {name: value for name, value in dataclasses.asdict(row).items() if name != "by_shard"}


def _measure(store, column, vectors, truth, shards, k, label, options, progress) -> EvalRow:
    times, recalls = [], []
    found = np.zeros((len(vectors), truth.shape[1]), dtype=bool)
    for i, vector in enumerate(vectors):
        started = time.perf_counter()
        ids = search(store, vector, column=column, k=k, **options).column("id").to_numpy()
        times.append(time.perf_counter() - started)
        found[i] = np.isin(truth[i], ids)
        recalls.append(found[i].sum() / k)
        progress.advance(1)
    ms = np.array(times) * 1000
    by_shard = () if shards is None else tuple(
        (int(shard), float(found[shards[: len(vectors)] == shard].mean()))
        for shard in np.unique(shards[: len(vectors)])
    )
    return EvalRow(label, float(np.mean(recalls)), *np.percentile(ms, [50, 95, 99]).tolist(), len(times) / sum(times),
                   by_shard)


def _shards_of(store: Store, truth: np.ndarray) -> np.ndarray | None:
    """The shard holding each true neighbour (same shape as ``truth``), or None without a cluster."""
    if store.cluster is None:
        return None
    where = placement(data_parts(store))
    return np.vectorize(lambda i: where.get(int(i) // ID_STRIDE, 0), otypes=[np.int64])(truth)


def sample_queries(store: Store, column: str, n: int, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """``n`` stored vectors picked at random, each nudged by noise of relative norm ``noise``."""
    col = embedding_column(column)
    rows = store.query(
        f"SELECT {as_float32(col)} AS v FROM {store.table(TABLE)} "
        "ORDER BY cityHash64(id, {seed:UInt64}) LIMIT {n:UInt32}",
        {"seed": seed, "n": n},
    )
    vectors = _matrix(rows.column("v"))
    rng = np.random.default_rng(seed)
    nudged = vectors + rng.standard_normal(vectors.shape).astype(np.float32) * (noise / np.sqrt(vectors.shape[1]))
    # float32 like the stored vectors (numpy promotes the float64 noise scale to float64 otherwise).
    return (nudged / np.linalg.norm(nudged, axis=1, keepdims=True)).astype(np.float32)


def exact_top_k(store: Store, column: str, queries: np.ndarray, k: int, progress: Progress | None = None) -> np.ndarray:
    """Exact top-k ids by cosine distance for every query at once, streaming the stored vectors."""
    progress = progress or Progress()
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_d = np.full((len(q), k), np.inf, dtype=np.float32)
    best_id = np.full((len(q), k), -1, dtype=np.int64)
    total = sum(stored_parts(store).values())
    progress.start("exact ground truth", total)
    for ids, vectors in iter_vectors(store, column):
        norms = np.linalg.norm(vectors, axis=1)
        dist = 1.0 - (q @ vectors.T) / np.where(norms == 0, 1, norms)
        d = np.concatenate([best_d, dist], axis=1)
        i = np.concatenate([best_id, np.broadcast_to(ids, dist.shape)], axis=1)
        keep = np.argpartition(d, k - 1, axis=1)[:, :k] if d.shape[1] > k else np.argsort(d, axis=1)
        best_d, best_id = np.take_along_axis(d, keep, 1), np.take_along_axis(i, keep, 1)
        progress.advance(len(ids))
    progress.finish()
    return best_id


def iter_vectors(store: Store, column: str, batch_rows: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, float32 vectors) of all stored rows, in id ranges of ``batch_rows``."""
    col = embedding_column(column)
    if stored_dim(store) is None:
        return
    for part, rows in sorted(stored_parts(store).items()):
        first = row_id(part, 0)
        for start in range(0, rows, batch_rows):
            table = store.query(
                f"SELECT id, {as_float32(col)} AS v FROM {store.table(TABLE)} "
                "WHERE id >= {lo:Int64} AND id < {hi:Int64} ORDER BY id",
                {"lo": first + start, "hi": first + start + batch_rows},
            )
            if table.num_rows:
                yield table.column("id").to_numpy(), _matrix(table.column("v"))


def _matrix(column) -> np.ndarray:
    flat = column.combine_chunks()
    values = flat.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(len(flat), -1)


def _load_queries(path: str | Path) -> np.ndarray:
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ArgumentError(f"{path}: not a readable .npy file of query vectors ({exc})") from None
    if vectors.ndim != 2 or vectors.dtype.kind != "f":
        raise ArgumentError(f"{path}: expected a float array of shape (queries, dim), found {vectors.shape}")
    return vectors.astype(np.float32)

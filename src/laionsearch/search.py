"""Nearest-neighbour search over the ``laion`` table, by vector or by a stored row.

The query vector and every filter value are query parameters; the SQL text is
fixed apart from the embedding column, which is chosen from a closed table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from .errors import ArgumentError, QueryError, StoreError
from .schema import EMBEDDING_COLUMNS, RESULT_COLUMNS, TABLE, stored_dim
from .store import Store

NSFW_VALUES = ("UNLIKELY", "UNSURE", "NSFW")
MAX_K = 10_000


def embedding_column(column: str) -> str:
    """The table column for ``--column image|text``."""
    try:
        return EMBEDDING_COLUMNS[column]
    except KeyError:
        raise ArgumentError(f"unknown column {column!r}; choose one of: {', '.join(EMBEDDING_COLUMNS)}") from None


def load_vector(path: str | Path) -> np.ndarray:
    """Read a query vector from a JSON list of numbers or a ``.npy`` file (shape (dim,) or (1, dim))."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            vector = np.load(path, allow_pickle=False)
        else:
            vector = np.asarray(json.loads(path.read_text()), dtype=np.float32)
    except FileNotFoundError:
        raise ArgumentError(f"{path}: no such file") from None
    except (ValueError, TypeError, OSError) as exc:
        raise ArgumentError(f"{path}: not a JSON list of numbers or a .npy vector ({exc})") from None
    if vector.ndim == 2 and vector.shape[0] == 1:
        vector = vector[0]
    if vector.ndim != 1 or vector.size == 0 or vector.dtype.kind not in "fiu":
        raise ArgumentError(f"{path}: expected one vector of numbers, found shape {vector.shape}")
    return vector.astype(np.float32)


def vector_of(store: Store, row_id: int, column: str = "image") -> np.ndarray:
    """The stored embedding of row ``row_id``."""
    col = embedding_column(column)
    _require_table(store)
    rows = store.query(f"SELECT {col} AS v FROM {store.table(TABLE)} WHERE id = {{id:Int64}}", {"id": row_id})
    if rows.num_rows == 0:
        raise QueryError(f"no row with id {row_id}")
    return np.asarray(rows.column("v")[0].as_py(), dtype=np.float32)


def search(
    store: Store,
    vector: Sequence[float] | np.ndarray,
    *,
    column: str = "image",
    k: int = 10,
    nsfw: Sequence[str] | None = None,
    min_similarity: float | None = None,
) -> pa.Table:
    """The ``k`` rows nearest to ``vector`` by cosine distance (exact search).

    ``nsfw`` keeps rows whose NSFW tag is one of the given values;
    ``min_similarity`` keeps rows whose caption-image similarity is at least
    that. Columns: id, url, caption, NSFW, similarity, distance (ascending).
    """
    col = embedding_column(column)
    if not 1 <= k <= MAX_K:
        raise ArgumentError(f"k must be between 1 and {MAX_K}, got {k}")
    target = _check_vector(store, vector)
    where, params = _filters(nsfw, min_similarity)
    params.update(target=target, k=k)
    sql = (
        f"SELECT {', '.join(RESULT_COLUMNS)}, cosineDistance({col}, {{target:Array(Float32)}}) AS distance "
        f"FROM {store.table(TABLE)} {where} ORDER BY distance ASC LIMIT {{k:UInt32}}"
    )
    return store.query(sql, params)


def search_like(store: Store, row_id: int, *, column: str = "image", **options) -> pa.Table:
    """Rows nearest to the stored row ``row_id`` (that row itself comes first)."""
    return search(store, vector_of(store, row_id, column), column=column, **options)


def _filters(nsfw: Sequence[str] | None, min_similarity: float | None) -> tuple[str, dict]:
    clauses, params = [], {}
    if nsfw:
        values = [v.strip().upper() for v in nsfw]
        unknown = [v for v in values if v not in NSFW_VALUES]
        if unknown:
            raise ArgumentError(f"unknown NSFW value(s) {', '.join(unknown)}; choose from {', '.join(NSFW_VALUES)}")
        clauses.append("NSFW IN {nsfw:Array(String)}")
        params["nsfw"] = values
    if min_similarity is not None:
        if not np.isfinite(min_similarity):
            raise ArgumentError("--min-similarity must be a finite number")
        clauses.append("similarity >= {min_similarity:Float32}")
        params["min_similarity"] = float(min_similarity)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _check_vector(store: Store, vector: Sequence[float] | np.ndarray) -> np.ndarray:
    target = np.asarray(vector, dtype=np.float32)
    if target.ndim != 1:
        raise ArgumentError(f"query vector must be one-dimensional, got shape {target.shape}")
    if not np.all(np.isfinite(target)) or not np.any(target):
        raise ArgumentError("query vector must be finite and not all zeros")
    dim = _require_table(store)
    if target.size != dim:
        raise ArgumentError(f"query vector has {target.size} dimensions, the store holds {dim}-d vectors")
    return target


def _require_table(store: Store) -> int:
    """The store's embedding dimension; fails clearly when nothing is ingested yet."""
    dim = stored_dim(store)
    if dim is None:
        raise StoreError(f"store {store.path} holds no rows yet; run `laionsearch ingest DIR` first")
    return dim

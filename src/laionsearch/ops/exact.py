"""Exact search by dot product, with a proof that the answer is the cosine ranking itself.

Ranking by ``cosineDistance`` divides by every stored vector's length; LAION's vectors are unit
length to ~1e-4, so a scan ranked by ``dotProduct`` finds the same rows for less on some
processors. On a bfloat16 store the scan also takes the query rounded to bfloat16: the engine's
kernel for two bfloat16 arrays is its fastest (docs/benchmarks.md). The scan keeps the best
``CANDIDATES`` rows; each one's cosine similarity lies within bounds of its dot product set by
the stored lengths' recorded error, the query's rounding and float32 arithmetic; only the
candidates that could be on the page are then ranked by ``cosineDistance``, and that page is
returned when no row outside the candidates can beat its last row. Otherwise (or for a store
whose lengths were never measured) the caller ranks the whole table by cosine distance.
"""

from __future__ import annotations

import numpy as np

from ..engine.params import vector_hex, vector_sql
from ..errors import QueryError
from ..schema import EMBEDDING_COLUMNS, RESULT_COLUMNS, TABLE, is_bfloat16, stored_origin, stored_storage, to_bfloat16
from ..store import Store
from .held import Held, stale
from .results import SearchResult, with_plan

#: Dot products stand in for cosine only while every stored length is within this of 1.
MAX_UNIT_ERROR = 0.01
#: Rows the scan keeps beyond the page (the bounds rarely need more than a few dozen; each 1,000 cost
#: ~12 ms at 1M rows).
CANDIDATES = 250
#: bfloat16 stores made before laionsearch rounded vectors itself: the engine truncated them
#: (up to 2^-7 of a value) where their recorded length error counts 2^-8.
LEGACY_BFLOAT16 = "bfloat16-lz4"
FLOAT32_EPS = 2.0**-24
#: How a scan of the whole column reads: data files of 16 MiB and more are mapped from the page cache
#: instead of copied into the engine's buffers (exact search at 1M rows 16-24% faster:
#: docs/benchmarks.md); smaller files, where mapping costs more than the copy, are read as usual. 0: never.
MMAP_MIN_BYTES = 16 << 20


def search_by_dot(store: Store, column: str, target: np.ndarray, where: str, vectors: str, params: dict,
                  plan: str, held: Held | None = None) -> SearchResult | None:
    """The page ``params['offset']``, ``params['k']`` of the exact cosine ranking of the rows matching
    ``where``, found by a dot-product scan (of the memory copy ``held`` where given); None where the
    store's lengths are unknown, the copy is no longer the table's or the candidates cannot prove the
    page (then scan the table, or rank it by cosine distance)."""
    storage = stored_storage(store) or ""
    error = unit_error(store, column, storage)
    if error is None:
        return None
    col = EMBEDDING_COLUMNS[column]
    unit = (target / np.linalg.norm(target)).astype(np.float32)
    scanned, query_type = (to_bfloat16(unit), "Array(BFloat16)") if is_bfloat16(storage) else (unit, "")
    depth = params["k"] + params["offset"]
    wanted = depth + max(depth, CANDIDATES)
    query_sql = f"CAST({vector_sql('unit')} AS {query_type})" if query_type else vector_sql("unit")
    source, extra, settings = store.table(TABLE), {}, scan_settings()
    if held is not None:
        # The filter's columns are not in the copy: the table says which ids match, the copy scores them.
        condition, extra = held.scan_filter()
        matching = f" AND id IN (SELECT id FROM {store.table(TABLE)} {where})" if where else ""
        source, where, settings = held.table, f"WHERE {condition}{matching}", []
    try:
        candidates = store.query(
            f"SELECT id, dotProduct({col}, {query_sql}) AS dot FROM {source} {where} "
            "ORDER BY dot DESC LIMIT {m:UInt32}" + (" SETTINGS " + ", ".join(settings) if settings else ""),
            {**params, **extra, "unit": vector_hex(scanned), "m": wanted},
        )
    except QueryError:
        if held is None:
            raise
        candidates = None  # the copy went away (released, or replaced by another client of the server)
    if held is not None and (candidates is None or (not candidates.num_rows and held.rows and not held.current(store))):
        stale(store)  # no rows: none match, or the copy is out of date (its statement's check failed)
        return None
    dots = candidates.column("dot").to_numpy().astype(np.float64)
    slack = arithmetic_error(len(unit))
    lower, upper = similarity_bounds(dots, error, float(np.linalg.norm(unit - scanned)), len(unit))
    if len(dots) >= depth:
        needed = upper >= np.sort(lower)[::-1][depth - 1] - 2 * slack
    else:
        needed = np.ones(len(dots), dtype=bool)  # every matching row is a candidate
    found = store.query(
        f"SELECT {', '.join(RESULT_COLUMNS)}, cosineDistance({col}, {vector_sql('target')}) AS distance{vectors} "
        f"FROM {store.table(TABLE)} WHERE id IN {{ids:Array(Int64)}} "
        "ORDER BY distance ASC LIMIT {k:UInt32} OFFSET {offset:UInt32}",
        {**params, "ids": candidates.column("id").to_numpy()[needed].tolist()},
    )
    left_out = upper[~needed].tolist() + ([float(upper[-1])] if len(dots) == wanted else [])
    if left_out and len(dots) >= depth:
        if found.num_rows < params["k"]:
            return None  # rows went away between the two statements
        last = found.column("distance")[found.num_rows - 1].as_py()
        if not max(left_out) < 1.0 - last - slack:
            return None
    return with_plan(found, f"{plan} (dot product{', in memory' if held is not None else ''})")


def scan_settings() -> list[str]:
    """Settings for a statement that reads the whole embedding column (no skip index, large files mapped)."""
    mapped = [f"min_bytes_to_use_mmap_io = {MMAP_MIN_BYTES:d}", "local_filesystem_read_method = 'mmap'"]
    return ["use_skip_indexes = 0"] + (mapped if MMAP_MIN_BYTES else [])


def unit_error(store: Store, column: str, storage: str) -> float | None:
    """How far any stored vector's length may be from 1, or None when not known to be within ``MAX_UNIT_ERROR``."""
    error = stored_origin(store).get("unit_error", {}).get(column)
    if error is not None and storage == LEGACY_BFLOAT16:
        error += 2.0**-8
    return error if error is not None and error <= MAX_UNIT_ERROR else None


def arithmetic_error(dim: int) -> float:
    """A bound on the float32 rounding of a dot product or cosine distance of unit-length ``dim``-vectors
    (each of ``dim`` additions and a few more operations may lose half an ulp)."""
    return 3.0 * dim * FLOAT32_EPS


def similarity_bounds(dots: np.ndarray, error: float, query_error: float, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest cosine similarity to the unit query ``q`` of rows whose dot product with the
    scanned query ``s`` came out as ``dots``, their lengths within 1 +- ``error`` and ``|q - s|`` =
    ``query_error``: the true ``v.q`` is within ``(1 + error) * query_error`` plus rounding of ``dots``."""
    spread = (1.0 + error) * (query_error + (1.0 + query_error) * arithmetic_error(dim) / 3.0)
    high, low = dots + spread, dots - spread
    upper = np.where(high >= 0, high / (1.0 - error), high / (1.0 + error))
    lower = np.where(low >= 0, low / (1.0 + error), low / (1.0 - error))
    return lower, upper

"""Nearest-neighbour search over the ``laion`` table, for a ``Query`` or a vector, with ``Filters``.

The query vector and every filter value are query parameters; the SQL text is
fixed apart from the embedding column, which is chosen from a closed table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, QueryError, StoreError
from ..engine.params import vector_hex, vector_sql
from ..schema import (RESULT_COLUMNS, TABLE, as_float32, embedding_column, stored_dim, stored_origin,
                      table_columns)
from .filters import Filters
from .index import has_caption_index, indexed_columns
from .query import Query, Term, resolve
from .query import image as image_term
from .query import row as row_term
from .query import text as text_term
from .dedup import DEDUP_KINDS, deduplicated
from .exact import scan_settings, search_by_dot
from .held import held_copy
from .hybrid import hybrid as fused
from .results import SearchResult, with_plan
from ..store import Store

MAX_K = 10_000
MAX_EF = 100_000
MAX_RESCORE = 100
ENGINE_VECTOR_LIMIT = 1000  # the engine's default max_limit_for_vector_search_queries
MIN_POSTFILTER_SELECTIVITY = 0.005
MAX_CANDIDATES = 20_000  # beyond this many index candidates, exact search over the matches is cheaper
#: Below this share of rows kept, exact search ranks the matches by cosine distance in one statement: the
#: dot-product path's second statement costs more than its scan saves (docs/benchmarks.md).
DOT_MIN_SELECTIVITY = 0.1
SELECTIVITY_SAMPLE = 100_000
POSTFILTER = "vector_search_filter_strategy = 'postfilter'"


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
    rows = store.query(
        f"SELECT {as_float32(col)} AS v FROM {store.table(TABLE)} WHERE id = {{id:Int64}}", {"id": row_id}
    )
    if rows.num_rows == 0:
        raise QueryError(f"no row with id {row_id}")
    return np.asarray(rows.column("v")[0].as_py(), dtype=np.float32)


def search(
    store: Store,
    query: Query | Sequence[float] | np.ndarray,
    *,
    column: str = "image",
    k: int = 10,
    offset: int = 0,
    filters: Filters | None = None,
    nsfw: Sequence[str] | None = None,
    min_similarity: float | None = None,
    dedup: str | None = None,
    hybrid: bool = False,
    words: str | None = None,
    with_vectors: bool = False,
    exact: bool = False,
    ef: int | None = None,
    rescore: int | None = None,
    model: str | None = None,
) -> SearchResult:
    """The ``k`` rows nearest to ``query`` (a ``Query`` of terms, or a vector) by cosine distance,
    after the first ``offset`` (for pages: offset + k is at most ``MAX_K``).

    Uses the column's HNSW index when there is one (approximate), unless
    ``exact``; ``ef`` sets the index's candidate list size for this search.
    ``rescore`` N fetches N x k candidates from the index and ranks them by their
    exact distance (for i8 and b1 indexes, whose own distances are coarse).
    ``filters`` (or its two oldest fields as ``nsfw`` and ``min_similarity``) keeps
    only the rows that pass; k rows come back whenever k rows match (see
    ``plan_filtered``). ``dedup`` ``url`` drops rows whose URL a better-ranked row
    has, ``image`` rows whose embedding is within ``dedup.DEDUP_DISTANCE`` of a
    better-ranked one's; k distinct rows come back whenever they exist.
    ``hybrid`` (for a query with texts) fuses the vector ranking with a ranking by
    the texts' words (or ``words``) in the caption (``hybrid``: reciprocal rank fusion).
    ``with_vectors`` adds the searched embedding as column ``embedding``.
    ``model`` overrides the store's CLIP model for the query's texts and images.
    Columns: id, url, caption, NSFW, similarity, distance (ascending);
    ``result.plan`` (and the table's metadata ``laionsearch.plan``) says how it
    ran. The result behaves as its Arrow table and shows as an image grid in
    notebooks.
    """
    embedding_column(column)  # an unknown column fails here, before any work
    if not 1 <= k <= MAX_K or not 0 <= offset <= MAX_K - k:
        raise ArgumentError(f"k must be at least 1 and offset at least 0, with offset + k at most {MAX_K:,}; "
                            f"got k {k}, offset {offset}")
    if ef is not None and not 1 <= ef <= MAX_EF:
        raise ArgumentError(f"ef must be between 1 and {MAX_EF}, got {ef}")
    if rescore is not None and not 1 <= rescore <= MAX_RESCORE:
        raise ArgumentError(f"rescore must be between 1 and {MAX_RESCORE}, got {rescore}")
    if dedup is not None and dedup not in DEDUP_KINDS:
        raise ArgumentError(f"unknown dedup {dedup!r}; choose url or image")
    if hybrid and dedup is not None:
        raise ArgumentError("choose --hybrid or --dedup, not both")
    if nsfw or min_similarity is not None:
        if filters is not None:
            raise ArgumentError("give the filters either as filters= or as nsfw=/min_similarity=, not both")
        filters = Filters.of(nsfw, min_similarity)
    filters = filters or Filters()
    require_columns(store, filters.columns())
    target = query_vector(store, query, column, model) if isinstance(query, Query) else _check_vector(store, query)
    ranked = _Ranked(store, target, column, filters, exact, ef, rescore)
    if hybrid:
        return fused(ranked, words or _words(query), k, offset, with_vectors)
    if dedup is None:
        return ranked.rows(k, offset, with_vectors)
    return deduplicated(ranked.rows, k, offset, dedup, with_vectors, MAX_K)


def _words(query) -> str:
    """The words of a query's positive texts, for ``hybrid``."""
    texts = [t.value for t in query.positive if t.kind == "text"] if isinstance(query, Query) else []
    if not texts:
        raise ArgumentError("--hybrid ranks captions by the query's words: give a --text query")
    return " ".join(texts)


class _Ranked:
    """One query's rows in order of distance, fetched ``k`` at a time after ``offset``."""

    def __init__(self, store, target, column, filters, exact, ef, rescore):
        self.store, self.target, self.column, self.filters = store, target, column, filters
        self.exact, self.ef, self.rescore = exact, ef, rescore
        self.column_sql = embedding_column(column)

    def rows(self, k: int, offset: int = 0, with_vectors: bool = False) -> SearchResult:
        store, col = self.store, embedding_column(self.column)
        condition, params = self.filters.condition(caption_index=has_caption_index(store))
        params.update(target=vector_hex(self.target), k=k, offset=offset)
        vectors = f", {as_float32(col)} AS embedding" if with_vectors else ""
        where = f"WHERE {condition}" if condition else ""
        sql = (
            f"SELECT {', '.join(RESULT_COLUMNS)}, cosineDistance({col}, {vector_sql('target')}) AS distance{vectors} "
            f"FROM {store.table(TABLE)} {where} ORDER BY distance ASC LIMIT {{k:UInt32}} OFFSET {{offset:UInt32}}"
        )

        def exactly(plan: str, selectivity: float = 1.0) -> SearchResult:
            held = held_copy(store, self.column)
            found = search_by_dot(store, self.column, self.target, where, vectors, params, plan, held) \
                if held is not None else None
            # A copy still current holds the table's vectors: the table's scan would find the same unprovable page.
            if found is None and selectivity >= DOT_MIN_SELECTIVITY and (
                    held is None or held_copy(store, self.column) is None):
                found = search_by_dot(store, self.column, self.target, where, vectors, params, plan)
            return found if found is not None else _run(store, sql, params, plan, scan_settings())

        if self.exact or self.column not in indexed_columns(store):
            return exactly("exact")
        depth = offset + k  # the engine takes offset + k rows from the index, then skips offset
        ann = _ann_settings(depth, self.ef, self.rescore)
        if not condition:
            fetch = [f"vector_search_index_fetch_multiplier = {self.rescore:d}"] if self.rescore else []
            return _run(store, sql, params, f"ann-rescored x{self.rescore}" if self.rescore else "ann", ann + fetch)
        selectivity = estimate_selectivity(store, self.filters, params)
        multiplier = plan_filtered(selectivity, depth)
        if multiplier is None:
            return exactly(f"exact-prefilter (selectivity ~{selectivity:.2%})", selectivity)
        result = _run(
            store, sql, params, f"ann-postfilter x{multiplier} (selectivity ~{selectivity:.2%})",
            ann + [POSTFILTER,
                   f"vector_search_index_fetch_multiplier = {min(multiplier * (self.rescore or 1), 1000):d}"],
        )
        if result.num_rows < k and _count(store, condition, params) > offset + result.num_rows:
            # The index's candidates held too few matches: answer exactly rather than short.
            return exactly("exact-prefilter (post-filter came back short)", selectivity)
        return result


def query_vector(store: Store, query: Query, column: str = "image", model: str | None = None) -> np.ndarray:
    """The unit vector a ``Query`` stands for, in the store's embedding space (texts and images
    encoded by ``model``, else the store's CLIP model; rows read from ``column``)."""
    dim = _require_table(store)

    def vector_of_term(term: Term) -> np.ndarray:
        if term.kind in ("text", "image"):
            encoder = _encoder(store, model)
            found = encoder.encode_text(term.value) if term.kind == "text" else encoder.encode_image(term.value)
            if found.shape[-1] != dim:
                made_by = stored_origin(store).get("model")
                raise ArgumentError(
                    f"CLIP model {encoder.model_name} gives {found.shape[-1]}-d vectors, the store holds {dim}-d ones"
                    + (f" (made by {made_by}: use --model {made_by})" if made_by else ""))
            return found
        if term.kind == "row":
            return vector_of(store, term.value, column)
        return np.asarray(term.value, dtype=np.float32)

    return resolve(query, dim, vector_of_term)


def require_columns(store: Store, needed: set[str]) -> None:
    """Fail in one line when the store's table predates a column a filter reads."""
    columns = table_columns(store) if needed else []  # cached; [] before the first ingest (that error comes later)
    missing = sorted(needed - set(columns)) if columns else []
    if missing:
        raise ArgumentError(
            f"store {store.location} was made before laionsearch kept {', '.join(missing)}; to filter on "
            "it, ingest the parts into a new store (--db NEW) — this one keeps working without those filters"
        )


def plan_filtered(selectivity: float, k: int = 10) -> int | None:
    """How to run a top-``k`` ANN search whose filter keeps ``selectivity`` of the rows.

    Post-filter (fetch ``ceil(4 / selectivity) * k`` HNSW candidates, four times
    the number expected to hold k matches, then filter them) when the filter
    keeps at least ``MIN_POSTFILTER_SELECTIVITY`` (0.5%) of rows and that is
    at most ``MAX_CANDIDATES``; otherwise pre-filter: exact search over the
    matching rows. Returns the fetch multiplier, or None for pre-filtering.
    """
    if selectivity < MIN_POSTFILTER_SELECTIVITY:
        return None
    # Four times, not two: at 5% selectivity twice the candidates found 0.885 of the exact filtered
    # top 10 where the index alone finds 0.925, four times 0.960 for 15% more time (docs/benchmarks.md).
    multiplier = math.ceil(4.0 / selectivity)
    return multiplier if multiplier * k <= MAX_CANDIDATES else None


def estimate_selectivity(store: Store, filters: Filters, params: dict) -> float:
    """Share of rows passing ``filters``, measured on the first ``SELECTIVITY_SAMPLE`` rows."""
    condition, _ = filters.condition(caption_index=has_caption_index(store))
    columns = ", ".join(f"`{c}`" for c in sorted(filters.columns()))
    rows = store.query(
        f"SELECT avg(({condition}) ? 1 : 0) AS s FROM "
        f"(SELECT {columns} FROM {store.table(TABLE)} LIMIT {SELECTIVITY_SAMPLE:d})",
        params,
    )
    value = rows.column("s")[0].as_py()
    return float(value) if value is not None and not math.isnan(value) else 0.0


def _count(store: Store, condition: str, params: dict) -> int:
    rows = store.query(f"SELECT count() AS n FROM {store.table(TABLE)} WHERE {condition}", params)
    return int(rows.column("n")[0].as_py())


def _ann_settings(k: int, ef: int | None, rescore: int | None = None) -> list[str]:
    settings = []
    if ef is not None:
        settings.append(f"hnsw_candidate_list_size_for_search = {ef:d}")
    if rescore:
        settings.append("vector_search_with_rescoring = 1")  # the caller sets the fetch multiplier
    if k > ENGINE_VECTOR_LIMIT:
        # Above this LIMIT the engine silently skips the index; raise it for this query instead.
        settings.append(f"max_limit_for_vector_search_queries = {k:d}")
    return settings


def _run(store: Store, sql: str, params: dict, plan: str, settings: list[str]) -> SearchResult:
    if settings:
        sql += " SETTINGS " + ", ".join(settings)
    result = store.query(sql, params)
    return with_plan(result, plan)



def search_text(store: Store, text: str, *, column: str = "image", **options) -> SearchResult:
    """Rows nearest to ``text`` encoded by CLIP (image embeddings by default; ``column="text"`` for captions).

    ``model=`` overrides the store's CLIP model for this query."""
    return search(store, Query.of(text_term(text)), column=column, **options)


def search_image(store: Store, image: str | Path | bytes, *, column: str = "image", **options) -> SearchResult:
    """Rows nearest to an image (path, http(s) URL or bytes) encoded by CLIP."""
    return search(store, Query.of(image_term(image)), column=column, **options)


def _encoder(store: Store, model: str | None):
    if model is None:
        return store.encoder()
    from ..clip.encoders import get_encoder

    return get_encoder(model)


def search_like(store: Store, row_id: int, *, column: str = "image", **options) -> SearchResult:
    """Rows nearest to the stored row ``row_id`` (that row itself comes first)."""
    return search(store, Query.of(row_term(row_id)), column=column, **options)


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
        raise StoreError(f"store {store.location} holds no rows yet; run `laionsearch ingest DIR` first")
    return dim

"""Hybrid search: the vector ranking and the caption-word ranking, fused by reciprocal rank fusion.

For a query with texts, rows are ranked two ways: by the query vector (the usual search,
filters applied) and by how many of the texts' words their caption holds (``hasAnyTokens``,
answered by the caption's text index when there is one; ties by LAION's caption-image
similarity). The union is ordered by the sum over both lists of 1 / (``RRF_K`` + rank)
(reciprocal rank fusion, Cormack, Clarke and Büttcher 2009, with their k = 60): a row
high in either list comes early, a row high in both comes first.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from ..engine.params import vector_hex, vector_sql
from ..schema import RESULT_COLUMNS, TABLE, as_float32
from ..store import Store
from .filters import Filters, caption_text, caption_tokens
from .index import has_caption_index
from .results import SearchResult, plan_of, with_plan

RRF_K = 60
#: Rows taken from each ranking: enough that the fused top k rarely needs deeper ones.
MIN_LIST = 100


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[int]:
    """Ids ordered by their reciprocal rank fusion score (ties: the earlier first seen)."""
    score: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, 1):
            score[row] = score.get(row, 0.0) + 1.0 / (k + rank)
    order = {row: i for i, row in enumerate(dict.fromkeys(r for ranking in rankings for r in ranking))}
    return sorted(score, key=lambda row: (-score[row], order[row]))


def caption_ranking(store: Store, words: str, filters: Filters, n: int) -> list[int]:
    """Up to ``n`` ids of rows whose caption holds any of ``words``, most words first."""
    indexed = has_caption_index(store)
    condition, params = filters.condition(caption_index=indexed)
    params.update(h_tokens=caption_tokens(words), n=n)
    rows = store.query(
        f"SELECT id FROM {store.table(TABLE)} WHERE hasAnyTokens({caption_text(indexed)}, {{h_tokens:Array(String)}})"
        + (f" AND {condition}" if condition else "")
        + " ORDER BY length(arrayIntersect(arrayDistinct(tokens(lower(caption), 'splitByNonAlpha')), "
        "{h_tokens:Array(String)})) DESC, similarity DESC, id LIMIT {n:UInt32}",
        params,
    )
    return rows.column("id").to_pylist()


def hybrid(ranked, words: str, k: int, offset: int, with_vectors: bool) -> SearchResult:
    """Rows ``offset`` to ``offset + k`` of the fused ranking; ``ranked`` is the search's vector ranking
    (``search._Ranked``), whose filters apply to both lists."""
    store, depth = ranked.store, offset + k
    n = max(MIN_LIST, 2 * depth)
    by_vector = ranked.rows(n, 0)
    by_caption = caption_ranking(store, words, ranked.filters, n)
    chosen = fuse([by_vector.column("id").to_pylist(), by_caption])[offset:depth]
    col = ranked.column_sql
    vectors = f", {as_float32(col)} AS embedding" if with_vectors else ""
    found = store.query(
        f"SELECT {', '.join(RESULT_COLUMNS)}, cosineDistance({col}, {vector_sql('target')}) AS distance{vectors} "
        f"FROM {store.table(TABLE)} WHERE id IN {{ids:Array(Int64)}}",
        {"target": vector_hex(ranked.target), "ids": chosen},
    )
    position = {row: i for i, row in enumerate(chosen)}
    order = sorted(range(found.num_rows), key=lambda i: position[found.column("id")[i].as_py()])
    rows = found.take(pa.array(order, pa.int64()))
    return with_plan(rows, f"hybrid: {plan_of(by_vector)} + caption words ({len(by_caption)} rows), "
                           "reciprocal rank fusion")

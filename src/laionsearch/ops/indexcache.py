"""The engine's vector index cache: its size, what it holds, whether an index fits, and loading it.

Every data part's HNSW graph must be in this cache (``vector_similarity_index_cache_size``,
5 GB by default) for a search to use it without reading it from disk first; a graph
that does not fit is loaded for each query that needs it, and evicts another one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..cluster import everywhere
from ..errors import IndexingError
from ..sizes import human
from ..store import Store

SETTING = "vector_similarity_index_cache_size"


@dataclass(frozen=True)
class CacheUse:
    """Bytes the cache may hold and bytes it holds now (all graphs of the engine). On a cluster,
    where each shard has its own cache: the smallest shard's size and the fullest shard's use."""

    size: int
    used: int


def cache_use(store: Store) -> CacheUse:
    """The engine's vector index cache: its configured size and what it holds now."""
    size = store.query(f"SELECT min(toUInt64(value)) AS value FROM {everywhere(store, 'system.server_settings')} "
                       "WHERE name = {n:String}", {"n": SETTING})
    used = store.query(f"SELECT max(toUInt64(value)) AS value FROM {everywhere(store, 'system.metrics')} "
                       "WHERE metric = 'VectorSimilarityIndexCacheBytes'")
    return CacheUse(int(size.column("value")[0].as_py()), int(used.column("value")[0].as_py() or 0))


def check_fits(store: Store, new_bytes: int, name: str, *, others: int = 0, over_cache: bool = False) -> str:
    """Say what index ``name`` will take in memory (on a cluster: on the fullest shard); raise
    IndexingError if it (with ``others``) exceeds the cache."""
    size = cache_use(store).size
    total = new_bytes + others
    said = f"{name} will take ~{human(new_bytes)} in memory" + (" on the fullest shard" if store.cluster else "") + (
        f" ({human(total)} with the other index)" if others else "") + f"; the index cache holds {human(size)}"
    if total > size and not over_cache:
        raise IndexingError(
            f"{said}, so searches would read graphs from disk again and again. Make the cache larger "
            f"(embedded: --index-cache {_round_up_gb(total * 1.1)}; a server: {SETTING} in its config), choose a "
            "smaller index (--quantization i8 or b1, or a smaller --m: docs/benchmarks.md, 'Index settings that fit'), "
            "or build it anyway with --over-cache"
        )
    return said


@dataclass(frozen=True)
class Warmed:
    """What ``warm`` loaded: seconds taken and the cache's bytes afterwards."""

    seconds: float
    cached: int


def warm(store: Store) -> Warmed:
    """Load every indexed column's graphs into the cache: one search per column touches every data part."""
    from .index import indexed_columns
    from .search import search

    from ..schema import stored_dim

    started = time.perf_counter()
    columns = sorted(indexed_columns(store))
    if columns:
        probe = [1.0] + [0.0] * (stored_dim(store) - 1)
        for column in columns:
            search(store, probe, column=column, k=1)
    return Warmed(time.perf_counter() - started, cache_use(store).used)


def _round_up_gb(n: float) -> str:
    gb = -(-int(n) // 10**9)
    return f"{gb}GB"

"""The engine seam: the same laionsearch on embedded chDB or on a ClickHouse server.

``open_engine(target)`` picks the backend by the target's kind:

| kind | backend | module |
|---|---|---|
| ``embedded`` (a path) | chDB in this process, a pool of connections | ``embedded.py`` |
| ``server`` (``http(s)://`` or ``chdb://``) | clickhouse-connect, a pool of clients | ``server.py`` |
"""

from __future__ import annotations

from .base import DEFAULT_CONNECTIONS, Engine
from .target import Target, default_target, parse_target


def _embedded(target: Target, connections: int | None, index_cache: int | None) -> Engine:
    from .embedded import open_embedded

    return open_embedded(target, connections, index_cache)


def _server(target: Target, connections: int | None, index_cache: int | None) -> Engine:
    from ..errors import ArgumentError
    from .server import ServerEngine

    if index_cache is not None:
        raise ArgumentError("the index cache size is a server setting: set vector_similarity_index_cache_size in the "
                            "ClickHouse server's config (--index-cache / $LAIONSEARCH_INDEX_CACHE are for embedded stores)")
    return ServerEngine(target, connections or DEFAULT_CONNECTIONS)


BACKENDS = {"embedded": _embedded, "server": _server}


def open_engine(target: Target, connections: int | None = None, index_cache: int | None = None) -> Engine:
    """An engine for ``target`` with a pool of up to ``connections`` (default: the backend's own choice);
    an embedded path is shared by every store of the process. ``index_cache`` sets an embedded
    engine's vector index cache, in bytes (the first store of the process decides)."""
    return BACKENDS[target.kind](target, connections, index_cache)


__all__ = ["BACKENDS", "Engine", "Target", "default_target", "open_engine", "parse_target"]

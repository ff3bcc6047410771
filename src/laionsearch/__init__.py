"""laionsearch: the LAION image-text collection, searchable on ClickHouse (embedded chDB or a server).

    import laionsearch as ls

    store = ls.Store("./laionsearch-data")       # or ls.Store("http://user:password@host:8123/laion")
    ls.ingest(store, "./parts")
    ls.create_index(store, "image")
    hits = ls.search_like(store, 12, k=5, nsfw=["UNLIKELY"])
    beaches = ls.search(store, ls.Query.of(ls.text("a beach"), negative=[ls.text("a cartoon")]),
                        filters=ls.Filters(min_width=1024))
"""

from .errors import (
    ArgumentError,
    DownloadError,
    EncoderError,
    IndexingError,
    IngestError,
    LaionsearchError,
    PartError,
    QueryError,
    StoreError,
)

# The rest is imported on first use, so `laionsearch --help` does not pay for pyarrow and the engine.
_LAZY = {
    "check_store": "ops.check",
    "evaluate": "ops.evaluate",
    "Filters": "ops.filters",
    "Query": "ops.query",
    "Term": "ops.query",
    "image": "ops.query",
    "row": "ops.query",
    "text": "ops.query",
    "vector": "ops.query",
    "create_index": "ops.index",
    "drop_index": "ops.index",
    "index_status": "ops.index",
    "hold_vectors": "ops.held",
    "release_vectors": "ops.held",
    "IngestReport": "ops.ingest",
    "ingest": "ops.ingest",
    "check_part": "release.layouts",
    "find_parts": "release.layouts",
    "parse_parts": "partspec",
    "row_id": "schema",
    "stored_dim": "schema",
    "stored_parts": "schema",
    "load_vector": "ops.search",
    "plan_of": "ops.results",
    "search": "ops.search",
    "SearchResult": "ops.results",
    "search_image": "ops.search",
    "search_like": "ops.search",
    "search_text": "ops.search",
    "vector_of": "ops.search",
    "Store": "store",
    "SynthSpec": "release.synth",
    "synth_parts": "release.synth",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'laionsearch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "DownloadError",
    "EncoderError",
    "Filters",
    "IndexingError",
    "IngestError",
    "IngestReport",
    "LaionsearchError",
    "PartError",
    "Query",
    "QueryError",
    "SearchResult",
    "Store",
    "StoreError",
    "SynthSpec",
    "Term",
    "check_part",
    "check_store",
    "create_index",
    "drop_index",
    "evaluate",
    "find_parts",
    "hold_vectors",
    "image",
    "index_status",
    "ingest",
    "load_vector",
    "parse_parts",
    "plan_of",
    "release_vectors",
    "row",
    "row_id",
    "search",
    "search_image",
    "search_like",
    "search_text",
    "stored_dim",
    "stored_parts",
    "synth_parts",
    "text",
    "vector",
    "vector_of",
]

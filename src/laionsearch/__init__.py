"""laionsearch: the LAION image-text collection, searchable on ClickHouse (embedded chDB or a server).

    import laionsearch as ls

    store = ls.Store("./laionsearch-data")       # or ls.Store("http://user:password@host:8123/laion")
    ls.ingest(store, "./parts")
    ls.create_index(store, "image")
    hits = ls.search_like(store, 12, k=5, nsfw=["UNLIKELY"])
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
from .ops.check import check_store
from .ops.evaluate import evaluate
from .ops.index import create_index, drop_index, index_status
from .ops.ingest import IngestReport, ingest
from .release.layouts import check_part, find_parts
from .partspec import parse_parts
from .schema import row_id, stored_dim, stored_parts
from .ops.search import load_vector, plan_of, search, search_image, search_like, search_text, vector_of
from .store import Store
from .release.synth import SynthSpec, synth_parts

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "DownloadError",
    "EncoderError",
    "IndexingError",
    "IngestError",
    "IngestReport",
    "LaionsearchError",
    "PartError",
    "QueryError",
    "Store",
    "StoreError",
    "SynthSpec",
    "check_part",
    "check_store",
    "create_index",
    "drop_index",
    "evaluate",
    "find_parts",
    "index_status",
    "ingest",
    "load_vector",
    "parse_parts",
    "plan_of",
    "row_id",
    "search",
    "search_image",
    "search_like",
    "search_text",
    "stored_dim",
    "stored_parts",
    "synth_parts",
    "vector_of",
]

"""The ``laion`` table: the ClickHouse guide's columns plus the source part.

``id`` is unique and stable across parts: ``id = part * 100_000_000 + row``,
where ``row`` is the row's position in its part's files (LAION parts hold
about a million rows, so there is ample room). Part 3, row 17 is id
300000017. The table is partitioned by ``part`` so that a part can be swapped
in whole, atomically (see ``ingest``).
"""

from __future__ import annotations

from .errors import ArgumentError
from .store import Store

TABLE = "laion"
STAGE_PREFIX = "laion_stage_"
ID_STRIDE = 100_000_000

EMBEDDING = "{embedding}"

#: Columns in table order, with their ClickHouse types (embeddings per ``STORAGES``).
COLUMNS = (
    ("id", "Int64"),
    ("url", "String"),
    ("caption", "String"),
    ("NSFW", "String"),
    ("similarity", "Float32"),
    ("image_embedding", EMBEDDING),
    ("text_embedding", EMBEDDING),
    ("part", "UInt32"),
)

#: How embeddings are stored, chosen when the table is created (``ingest --storage``).
#: float32 keeps the release's float16 values exactly, uncompressed: LZ4 (the guide's
#: default codec, kept as float32-lz4) saves ~5% of disk on these vectors but makes exact
#: search ~1.5x and ingest ~1.6x slower (docs/benchmarks.md). bfloat16 rounds the values
#: (8-bit mantissa) for half the disk.
STORAGES = {
    "float32": "Array(Float32) CODEC(NONE)",
    "float32-lz4": "Array(Float32)",
    "bfloat16": "Array(BFloat16)",
}
DEFAULT_STORAGE = "float32"

#: ``--column`` choices mapped to the embedding column they search.
EMBEDDING_COLUMNS = {"image": "image_embedding", "text": "text_embedding"}

#: Columns a search returns, besides the computed ``distance``.
RESULT_COLUMNS = ("id", "url", "caption", "NSFW", "similarity")


def as_float32(column: str) -> str:
    """SQL reading an embedding column as Array(Float32) whatever its storage (BFloat16 has no Arrow type)."""
    return f"CAST({column} AS Array(Float32))"


def row_id(part: int, row: int) -> int:
    """The ``id`` of row ``row`` of part ``part``."""
    return part * ID_STRIDE + row


#: MergeTree settings of the ``laion`` table. An ANN query reads url, caption, NSFW and
#: similarity only for its hits, but decompresses every granule and compression block a hit
#: falls in: granules of 256 rows and 16 KiB blocks (instead of ~2,500 rows and 64 KiB-1 MiB)
#: made that read 1.8-2.6x and the indexed search 1.6-1.8x faster (6.1 against 11.1 ms at 1M
#: rows), for 4-30% slower full scans and 0.2% more disk (docs/benchmarks.md, "Table layout").
#: The cleanup settings make the engine delete replaced and merged-away data parts within
#: ~1-3 s instead of its default 30-40 s cycle (measured on chDB 4.4): a re-ingest or an index
#: build gives its disk back before the command ends (``space.await_outdated_parts``).
CLEANUP_SETTINGS = (
    "cleanup_delay_period = 1, cleanup_delay_period_random_add = 0, cleanup_thread_preferred_points_per_iteration = 0"
)
TABLE_SETTINGS = "index_granularity = 256, max_compress_block_size = 16384, " + CLEANUP_SETTINGS


def create_table_sql(qualified_name: str, storage: str = DEFAULT_STORAGE, settings: str = TABLE_SETTINGS) -> str:
    """DDL of the ``laion`` table under ``qualified_name``."""
    embedding = STORAGES[storage]
    columns = ",\n    ".join(f"`{name}` {ctype.replace(EMBEDDING, embedding)}" for name, ctype in COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n    {columns}\n)\n"
        f"ENGINE = MergeTree\nPARTITION BY part\nORDER BY id\nSETTINGS {settings}"
    )


def ensure_table(store: Store, storage: str | None = None) -> None:
    """Create the ``laion`` table if it does not exist; refuse a ``storage`` other than the table's."""
    if storage is not None and storage not in STORAGES:
        raise ArgumentError(f"unknown storage {storage!r}; choose one of: {', '.join(STORAGES)}")
    current = stored_storage(store)
    if current is None:
        store.execute(create_table_sql(store.table(TABLE), storage or DEFAULT_STORAGE))
        return
    if storage is not None and storage != current:
        raise ArgumentError(f"the store keeps embeddings as {current}; --storage {storage} needs a new --db")


#: Tables this process gave the cleanup settings: the engine applies them from its next start.
_cleanup_added: set[tuple[str, str]] = set()


def prompt_cleanup(store: Store) -> bool:
    """Whether the engine deletes ``laion``'s outdated data parts within seconds in this process.

    A table created before ``CLEANUP_SETTINGS`` gets them now, effective from the next start."""
    key = (store.location, store.database)
    if key in _cleanup_added:
        return False
    if _has_cleanup_settings(store):
        return True
    store.execute(f"ALTER TABLE {store.table(TABLE)} MODIFY SETTING {CLEANUP_SETTINGS}")
    _cleanup_added.add(key)
    return False


def _has_cleanup_settings(store: Store) -> bool:
    rows = store.query(
        "SELECT create_table_query AS q FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": store.database, "t": TABLE},
    ).to_pylist()
    return bool(rows) and "cleanup_delay_period" in rows[0]["q"]


def stored_storage(store: Store) -> str | None:
    """The ``STORAGES`` key of an existing table, or None if there is no table."""
    if not store.has_table(TABLE):
        return None
    (row,) = store.query(
        "SELECT type, compression_codec AS codec FROM system.columns "
        "WHERE database = {db:String} AND table = {t:String} AND name = 'image_embedding'",
        {"db": store.database, "t": TABLE},
    ).to_pylist()
    declared = row["type"] + (f" {row['codec']}" if row["codec"] else "")
    return next((name for name, ctype in STORAGES.items() if ctype == declared), declared)


def data_parts(store: Store) -> list[dict]:
    """The active data parts of ``laion`` (name, partition, rows, bytes), from the engine's part catalogue."""
    if not store.has_table(TABLE):
        return []
    return store.query(
        "SELECT name, partition, rows, bytes_on_disk AS bytes FROM system.parts "
        "WHERE database = {db:String} AND table = {t:String} AND active ORDER BY partition",
        {"db": store.database, "t": TABLE},
    ).to_pylist()


def stored_parts(store: Store) -> dict[int, int]:
    """Row count of every LAION part present in the store."""
    counts: dict[int, int] = {}
    for data_part in data_parts(store):
        number = int(data_part["partition"])
        counts[number] = counts.get(number, 0) + int(data_part["rows"])
    return counts


def stored_dim(store: Store) -> int | None:
    """Embedding dimension of the stored rows, or None for an empty store (reads only array sizes)."""
    return store.fact("dim", lambda: _dim(store))


def _dim(store: Store) -> int | None:
    if not store.has_table(TABLE):
        return None
    rows = store.query(f"SELECT image_embedding.size0 AS d FROM {store.table(TABLE)} LIMIT 1")
    return int(rows.column("d")[0].as_py()) if rows.num_rows else None

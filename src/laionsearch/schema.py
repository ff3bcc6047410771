"""The ``laion`` table: the ClickHouse guide's columns plus the source part.

On a cluster, ``laion`` is a Distributed table over ``laion_local`` on every shard
(``cluster.py``): statements that read rows use ``laion``; statements that change the
table or its indexes, and the catalogue queries, use ``local_table``/``local_name``.

``id`` is unique and stable across parts: ``id = part * 100_000_000 + row``,
where ``row`` is the row's position in its part's files (LAION parts hold
about a million rows, so there is ample room). Part 3, row 17 is id
300000017. The table is partitioned by ``part`` so that a part can be swapped
in whole, atomically (see ``ingest``).
"""

from __future__ import annotations

import json

import numpy as np

from .cluster import LOCAL_TABLE, distributed_engine, everywhere, on_cluster
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
    # The release's other metadata worth filtering on (0 or '' where the release has none).
    ("width", "UInt32"),
    ("height", "UInt32"),
    ("original_width", "UInt32"),
    ("original_height", "UInt32"),
    ("LICENSE", "LowCardinality(String)"),
    ("key", "String"),
    ("image_path", "String"),
)

#: How embeddings are stored, chosen when the table is created (``ingest --storage``).
#: float32 keeps the release's float16 values exactly, uncompressed: LZ4 (the guide's
#: default codec, kept as float32-lz4) saves ~5% of disk on these vectors but makes exact
#: search ~1.5x and ingest ~1.6x slower (docs/benchmarks.md). bfloat16 rounds the values
#: (8-bit mantissa) for half the disk, uncompressed too: with LZ4 its exact search read
#: 4-5x slower.
STORAGES = {
    "float32": "Array(Float32) CODEC(NONE)",
    "float32-lz4": "Array(Float32)",
    "bfloat16": "Array(BFloat16) CODEC(NONE)",
}
#: Storages older laionsearch versions created, recognised in existing stores but no longer offered.
LEGACY_STORAGES = {"bfloat16-lz4": "Array(BFloat16)"}
DEFAULT_STORAGE = "float32"

#: ``--column`` choices mapped to the embedding column they search.
EMBEDDING_COLUMNS = {"image": "image_embedding", "text": "text_embedding"}

#: Columns a search returns, besides the computed ``distance``.
RESULT_COLUMNS = ("id", "url", "caption", "NSFW", "similarity")


def embedding_column(column: str) -> str:
    """The table column for ``--column image|text``."""
    try:
        return EMBEDDING_COLUMNS[column]
    except KeyError:
        raise ArgumentError(f"unknown column {column!r}; choose one of: {', '.join(EMBEDDING_COLUMNS)}") from None


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


def local_name(store: Store) -> str:
    """The table that holds the rows on this server (on every shard of a cluster): ``laion`` or ``laion_local``."""
    return LOCAL_TABLE if store.cluster is not None else TABLE


def local_table(store: Store) -> str:
    """``local_name`` qualified with the store's database."""
    return store.table(local_name(store))


def create_table_sql(qualified_name: str, storage: str = DEFAULT_STORAGE, settings: str = TABLE_SETTINGS,
                     on: str = "", engine: str | None = None) -> str:
    """DDL of the ``laion`` table under ``qualified_name``: a MergeTree, or ``engine`` (a Distributed
    table, whose columns carry no codec)."""
    embedding = STORAGES[storage] if engine is None else STORAGES[storage].replace(" CODEC(NONE)", "")
    columns = ",\n    ".join(f"`{name}` {ctype.replace(EMBEDDING, embedding)}" for name, ctype in COLUMNS)
    table = f"CREATE TABLE IF NOT EXISTS {qualified_name}{on} (\n    {columns}\n)\n"
    if engine is not None:
        return table + f"ENGINE = {engine}"
    return table + f"ENGINE = MergeTree\nPARTITION BY part\nORDER BY id\nSETTINGS {settings}"


def ensure_table(store: Store, storage: str | None = None) -> None:
    """Create the ``laion`` table if it does not exist (on a cluster: ``laion_local`` on every shard
    and ``laion`` over them); refuse a ``storage`` other than the table's."""
    if storage is not None and storage not in STORAGES:
        raise ArgumentError(f"unknown storage {storage!r}; choose one of: {', '.join(STORAGES)}")
    current = stored_storage(store)
    if current is None:
        storage = storage or DEFAULT_STORAGE
        on = on_cluster(store)
        store.execute(create_table_sql(local_table(store), storage, on=on))
        if store.cluster is not None:
            store.execute(create_table_sql(store.table(TABLE), storage, on=on,
                                           engine=distributed_engine(store, LOCAL_TABLE)))
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
    store.execute(f"ALTER TABLE {local_table(store)}{on_cluster(store)} MODIFY SETTING {CLEANUP_SETTINGS}")
    _cleanup_added.add(key)
    return False


def _has_cleanup_settings(store: Store) -> bool:
    rows = store.query(
        f"SELECT create_table_query AS q FROM {everywhere(store, 'system.tables')} "
        "WHERE database = {db:String} AND name = {t:String}",
        {"db": store.database, "t": local_name(store)},
    ).to_pylist()
    return bool(rows) and all("cleanup_delay_period" in row["q"] for row in rows)


def stored_storage(store: Store) -> str | None:
    """The ``STORAGES`` (or ``LEGACY_STORAGES``) key of an existing table, or None if there is no table."""
    return store.fact("storage", lambda: _storage(store))


def is_bfloat16(storage: str | None) -> bool:
    """Whether a storage keeps embeddings as BFloat16 (2 bytes a value, rounded)."""
    return (storage or "").startswith("bfloat16")


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """``values`` (float32) rounded to the nearest bfloat16, ties to even, kept as float32: the
    engine then converts them to BFloat16 without a further change."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return rounded.view(np.float32).reshape(np.shape(values))


def _storage(store: Store) -> str | None:
    if not store.has_table(TABLE):
        return None
    (row,) = store.query(
        f"SELECT type, compression_codec AS codec FROM {everywhere(store, 'system.columns')} "
        "WHERE database = {db:String} AND table = {t:String} AND name = 'image_embedding' LIMIT 1",
        {"db": store.database, "t": local_name(store)},
    ).to_pylist()
    declared = row["type"] + (f" {row['codec']}" if row["codec"] else "")
    return next((name for name, ctype in {**STORAGES, **LEGACY_STORAGES}.items() if ctype == declared), declared)


def data_parts(store: Store) -> list[dict]:
    """The active data parts of ``laion`` (name, partition, rows, bytes, and the shard that holds
    it: 0 without a cluster), from the engine's part catalogue (every shard's)."""
    if not store.has_table(TABLE):
        return []
    return store.query(
        f"SELECT shardNum() AS shard, name, partition, rows, bytes_on_disk AS bytes "
        f"FROM {everywhere(store, 'system.parts')} "
        "WHERE database = {db:String} AND table = {t:String} AND active ORDER BY partition, shard",
        {"db": store.database, "t": local_name(store)},
    ).to_pylist()


def stored_parts(store: Store) -> dict[int, int]:
    """Row count of every LAION part present in the store."""
    counts: dict[int, int] = {}
    for data_part in data_parts(store):
        number = int(data_part["partition"])
        counts[number] = counts.get(number, 0) + int(data_part["rows"])
    return counts


def table_columns(store: Store) -> list[str]:
    """The columns of the store's ``laion`` table (a store made by an older laionsearch has fewer)."""
    return store.fact("columns", lambda: store.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
        {"db": store.database, "t": TABLE},
    ).column("name").to_pylist())


def stored_origin(store: Store) -> dict:
    """What ``ingest`` recorded about the store's vectors in the ``laion`` table's comment: ``dataset``,
    ``model`` (the CLIP model that made them) and ``unit_error`` (per embedding column, the largest
    |length - 1| of any stored vector, when every part was measured); {} before the first ingest."""
    return store.fact("origin", lambda: _origin(store))


def _origin(store: Store) -> dict:
    rows = store.query("SELECT comment FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                       {"db": store.database, "t": TABLE}).to_pylist()
    try:
        found = json.loads(rows[0]["comment"]) if rows and rows[0]["comment"] else {}
    except ValueError:  # a comment someone else wrote
        return {}
    if not isinstance(found, dict):
        return {}
    origin = {k: str(found[k]) for k in ("dataset", "model") if k in found}
    errors = found.get("unit_error")
    if isinstance(errors, dict) and all(isinstance(errors.get(c), (int, float)) for c in EMBEDDING_COLUMNS):
        origin["unit_error"] = {c: float(errors[c]) for c in EMBEDDING_COLUMNS}
    return origin


def record_origin(store: Store, *, dataset: str | None = None, model: str | None = None,
                  unit_error: dict[str, float] | None = None) -> None:
    """Keep the vectors' dataset, model and length error with the table (a second dataset is added to
    the first; a length error only grows)."""
    origin = dict(stored_origin(store))
    if dataset and dataset not in origin.get("dataset", "").split(", "):
        origin["dataset"] = ", ".join(filter(None, (origin.get("dataset"), dataset)))
    if model:
        origin["model"] = model
    if unit_error is not None:
        known = origin.get("unit_error", {})
        origin["unit_error"] = {c: max(unit_error[c], known.get(c, 0.0)) for c in EMBEDDING_COLUMNS}
    if origin == stored_origin(store):
        return
    text = json.dumps(origin, ensure_ascii=True).replace("\\", "\\\\").replace("'", "\\'")
    store.execute(f"ALTER TABLE {store.table(TABLE)}{on_cluster(store)} MODIFY COMMENT '{text}'")


def stored_dim(store: Store) -> int | None:
    """Embedding dimension of the stored rows, or None for an empty store (reads only array sizes)."""
    return store.fact("dim", lambda: _dim(store))


def _dim(store: Store) -> int | None:
    if not store.has_table(TABLE):
        return None
    rows = store.query(f"SELECT image_embedding.size0 AS d FROM {store.table(TABLE)} LIMIT 1")
    return int(rows.column("d")[0].as_py()) if rows.num_rows else None

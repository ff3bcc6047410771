"""The ``laion`` table: the ClickHouse guide's columns plus the source part.

``id`` is unique and stable across parts: ``id = part * 100_000_000 + row``,
where ``row`` is the row's position in its part's files (LAION parts hold
about a million rows, so there is ample room). Part 3, row 17 is id
300000017. The table is partitioned by ``part`` so that a part can be swapped
in whole, atomically (see ``ingest``).
"""

from __future__ import annotations

from .store import Store

TABLE = "laion"
STAGE_PREFIX = "laion_stage_"
ID_STRIDE = 100_000_000

#: Columns in table order, with their ClickHouse types.
COLUMNS = (
    ("id", "Int64"),
    ("url", "String"),
    ("caption", "String"),
    ("NSFW", "String"),
    ("similarity", "Float32"),
    ("image_embedding", "Array(Float32)"),
    ("text_embedding", "Array(Float32)"),
    ("part", "UInt32"),
)

#: ``--column`` choices mapped to the embedding column they search.
EMBEDDING_COLUMNS = {"image": "image_embedding", "text": "text_embedding"}

#: Columns a search returns, besides the computed ``distance``.
RESULT_COLUMNS = ("id", "url", "caption", "NSFW", "similarity")


def row_id(part: int, row: int) -> int:
    """The ``id`` of row ``row`` of part ``part``."""
    return part * ID_STRIDE + row


def create_table_sql(qualified_name: str) -> str:
    """DDL of the ``laion`` table under ``qualified_name``."""
    columns = ",\n    ".join(f"`{name}` {ctype}" for name, ctype in COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n    {columns}\n)\n"
        "ENGINE = MergeTree\nPARTITION BY part\nORDER BY id\nSETTINGS index_granularity = 8192"
    )


def ensure_table(store: Store) -> None:
    """Create the ``laion`` table if it does not exist."""
    store.execute(create_table_sql(store.table(TABLE)))


def stored_parts(store: Store) -> dict[int, int]:
    """Row count of every part present in the store, from the engine's part catalogue."""
    if not store.has_table(TABLE):
        return {}
    rows = store.query(
        "SELECT partition, sum(rows) AS n FROM system.parts "
        "WHERE database = {db:String} AND table = {t:String} AND active GROUP BY partition",
        {"db": store.database, "t": TABLE},
    )
    return {int(p): int(n) for p, n in zip(rows.column("partition").to_pylist(), rows.column("n").to_pylist())}


def stored_dim(store: Store) -> int | None:
    """Embedding dimension of the stored rows, or None for an empty store (reads only array sizes)."""
    return store.fact("dim", lambda: _dim(store))


def _dim(store: Store) -> int | None:
    if not store.has_table(TABLE):
        return None
    rows = store.query(f"SELECT image_embedding.size0 AS d FROM {store.table(TABLE)} LIMIT 1")
    return int(rows.column("d")[0].as_py()) if rows.num_rows else None

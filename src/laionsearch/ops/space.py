"""Disk space: what ingest and index builds will need, checked before they start.

The engine reports its disks' free space (``system.disks``), on an embedded store and
on a server alike. A run that would not fit stops before writing anything, with one
line naming both numbers, instead of filling the disk halfway through a part or an
index build.
"""

from __future__ import annotations

import time

from ..cluster import everywhere
from ..errors import LaionsearchError
from ..schema import local_name
from ..sizes import human
from ..store import Store

#: Margin on top of the estimates: the engine's own files, marks, merges in flight.
MARGIN = 1.15


def free_bytes(store: Store) -> int:
    """Free bytes on the disk that holds the store's tables (the smallest, if several; on a cluster,
    of every shard's)."""
    rows = store.query(f"SELECT min(free_space) AS free FROM {everywhere(store, 'system.disks')}").to_pylist()
    return int(rows[0]["free"])


#: Bytes per vector component in an HNSW graph, by the index's quantization.
BYTES_PER_VALUE = {"f64": 8, "f32": 4, "f16": 2, "bf16": 2, "i8": 1, "b1": 0.125}


def index_bytes(rows: int, dim: int, quantization: str, m: int) -> int:
    """An HNSW graph's size: rows x (dim x bytes per value + M x 8) (ClickHouse's docs)."""
    return int(rows * (dim * BYTES_PER_VALUE[quantization] + m * 8))


def require(store: Store, need: int, what: str, error: type[LaionsearchError]) -> None:
    """Raise ``error`` if ``need`` bytes (plus the margin) do not fit on the store's disk."""
    need = int(need * MARGIN)
    free = free_bytes(store)
    if need > free:
        raise error(
            f"{what} needs about {human(need)} on the store's disk, which has {human(free)} free; "
            "free some space or use a --db on a larger disk"
        )


def await_outdated_parts(store: Store, timeout: float = 15.0) -> bool:
    """Wait until the engine has deleted the data parts that replaced or merged ones left behind.

    A command that ends sooner would leave them on disk until some later process keeps
    the store open long enough. True if they are gone, False if ``timeout`` passed first.
    """
    deadline = time.monotonic() + timeout
    while True:
        rows = store.query(
            f"SELECT count() AS n FROM {everywhere(store, 'system.parts')} "
            "WHERE database = {db:String} AND table = {t:String} AND NOT active",
            {"db": store.database, "t": local_name(store)},
        )
        if rows.column("n")[0].as_py() == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)

"""An embedding column held in the engine's memory, so that exact search need not read the table.

Exact search spends most of its time reading the column out of the table's data parts: at 1M float32
rows the engine took 2.0-3.4x numpy's whole search just to read it, whatever the read method
(docs/benchmarks.md). A copy of ``id`` and the column in a ``Memory`` table, made once, is scanned
2-3x faster, so that unfiltered exact search came in at 0.67-0.97x numpy's time on an AVX2-only
processor (1.3x and under with AVX-512); filtered exact search takes the matching ids from the table
and scores them in the copy. The copy is opt-in (``hold_vectors``, ``serve --hold-vectors``): it
takes the column's uncompressed size in RAM.

A copy is only used while it is the table's: its comment records the table's *fingerprint* (per
partition, the block numbers its active parts cover and their latest mutation: merges keep it,
inserts, deletes and mutations change it) and its row count. Every scan of the copy checks the
fingerprint in the same statement, and a copy that no longer matches is passed over for the table.
A ``Memory`` table loses its rows when its engine restarts (its definition stays): the row count
tells, and such a copy is passed over too.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArgumentError, LaionsearchError, QueryError, StoreError
from ..schema import TABLE, embedding_column, is_bfloat16, stored_dim, stored_storage
from ..sizes import human
from ..store import Store

#: The copy of ``laion``'s column ``c`` is table ``laion_held_<c>`` in the store's database.
PREFIX = "laion_held_"
#: Memory the copy may not take: what the engine and the rest of the machine keep for searching.
HEADROOM = 1 << 30

#: One number for what ``laion`` holds, per the fingerprint described above; parameters ``held_db``.
FINGERPRINT_SQL = (
    "SELECT cityHash64(arraySort(groupArray((partition_id, blocks, first, last, mutation)))) FROM ("
    "SELECT partition_id, sum(max_block_number - min_block_number + 1) AS blocks, min(min_block_number) AS first, "
    "max(max_block_number) AS last, max(if(data_version > max_block_number, data_version, 0)) AS mutation "
    f"FROM system.parts WHERE database = {{held_db:String}} AND table = '{TABLE}' AND active GROUP BY partition_id)"
)


@dataclass(frozen=True)
class Held:
    """A copy of ``laion``'s ``column`` (``image`` or ``text``) in table ``name`` of ``database``, made
    when the table had fingerprint ``fingerprint`` and ``rows`` rows."""

    database: str
    column: str
    fingerprint: int
    rows: int

    @property
    def table(self) -> str:
        return f"{self.database}.{PREFIX}{self.column}"

    def current(self, store: Store) -> bool:
        """Whether the table is still as it was copied and the copy still holds its rows (a restart empties it)."""
        found = store.query(f"SELECT ({FINGERPRINT_SQL}) AS f, (SELECT count() FROM {self.table}) AS n",
                            {"held_db": self.database}).to_pylist()[0]
        return int(found["f"]) == self.fingerprint and int(found["n"]) == self.rows

    def scan_filter(self) -> tuple[str, dict]:
        """The condition (and its parameters) under which a statement reads this copy: only while the
        table is as it was copied."""
        return f"({FINGERPRINT_SQL}) = {{held_fp:UInt64}}", {"held_fp": self.fingerprint, "held_db": self.database}


@dataclass(frozen=True)
class HoldReport:
    """What ``hold_vectors`` made: the copy, its size in memory, and the seconds it took."""

    held: Held
    bytes: int
    seconds: float


def hold_vectors(store: Store, column: str = "image") -> HoldReport:
    """Copy ``id`` and the ``column`` embeddings into the engine's memory for fast exact
    search (replacing an earlier copy). The copy lasts until ``release_vectors``, a change to the
    table (then it is no longer used) or the engine's restart (an embedded engine: this process).
    Raises ArgumentError where it cannot help (a cluster, an empty table, too little free memory)."""
    source = embedding_column(column)
    if store.cluster is not None:
        raise ArgumentError(f"holding vectors in memory is for one engine; {store.location} spreads its rows "
                            f"over cluster {store.cluster.name}, where each shard would need its own copy")
    dim = stored_dim(store)
    if not dim:
        raise ArgumentError(f"the store at {store.location} holds no rows to hold in memory")
    from .exact import unit_error

    storage = stored_storage(store) or ""
    if unit_error(store, column, storage) is None:
        raise ArgumentError(f"the copy is scanned by dot product, which needs unit-length {column} vectors measured at "
                            f"ingest; the store at {store.location} has no such record (made by an older laionsearch, "
                            "or its vectors are not unit length): re-ingest the parts to hold them")
    rows = _count(store)
    need = rows * (8 + 8 + dim * (2 if is_bfloat16(storage) else 4))  # id, array offset, values
    free = free_memory(store)
    if free is not None and need + HEADROOM > free:
        raise ArgumentError(f"holding the {column} vectors takes ~{human(need)} of memory and the engine has "
                            f"~{human(free)} free; search without --hold-vectors, or on a machine with more memory")
    table = store.table(PREFIX + column)
    started = time.perf_counter()
    before = fingerprint(store)
    store.execute(f"DROP TABLE IF EXISTS {table}")
    try:
        store.execute(f"CREATE TABLE {table} ENGINE = Memory AS SELECT id, {source} "
                      f"FROM {store.table(TABLE)}")
        copied = _count(store, PREFIX + column)
        if fingerprint(store) != before or copied != _count(store):
            raise StoreError(f"the table at {store.location} changed while its {column} vectors were copied; "
                             "hold them again once it is done")
        held = Held(store.database, column, before, copied)
        comment = json.dumps({"fingerprint": held.fingerprint, "rows": held.rows})
        store.execute(f"ALTER TABLE {table} MODIFY COMMENT '{comment}'")  # digits and quotes only
    except BaseException:
        store.execute(f"DROP TABLE IF EXISTS {table}")
        raise
    return HoldReport(held, need, time.perf_counter() - started)


def keep_held(store: Store, columns: list[str], stop: threading.Event, interval: float = 10.0,
              say: Callable[[str], None] = print) -> None:
    """Until ``stop`` is set, every ``interval`` seconds: hold again each of ``columns`` whose copy the
    table has moved on from, once the table has stayed the same for an interval (so that an ingest
    running part by part is copied when it is done, not after each part). ``say`` reports each copy
    made, or why it could not be (tried again only after the table changes)."""
    last, failed = fingerprint(store), None
    while not stop.wait(interval):
        try:
            now = fingerprint(store)
            if now != last or now == failed:
                last = now  # still changing, or a copy of this state was refused already
                continue
            for column in columns:
                if _current(store, column) is None and not stop.is_set():
                    report = hold_vectors(store, column)
                    say(f"{column} vectors held in memory again: {human(report.bytes)} of {report.held.rows:,} rows "
                        f"copied in {report.seconds:.1f} s")
        except LaionsearchError as exc:
            failed = last
            say(f"the {', '.join(columns)} vectors could not be held again: {exc}")


def release_vectors(store: Store, column: str = "image") -> bool:
    """Drop the memory copy of ``column`` made by ``hold_vectors``; False if there was none."""
    embedding_column(column)  # an unknown column is an error, not "none held"
    existed = store.has_table(PREFIX + column)
    if existed:
        store.execute(f"DROP TABLE {store.table(PREFIX + column)}")
    return existed


def held_copy(store: Store, column: str) -> Held | None:
    """The memory copy of ``column`` when it holds the table's rows as they are now, else None."""
    return store.fact(f"held:{column}", lambda: _current(store, column))


def stale(store: Store) -> None:
    """A scan found a copy out of date: look again before the next search rather than scan it again."""
    store.forget_facts()


def _current(store: Store, column: str) -> Held | None:
    found = store.query("SELECT comment FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                        {"db": store.database, "t": PREFIX + column}).to_pylist()
    if not found:
        return None
    try:
        recorded = json.loads(found[0]["comment"])
        held = Held(store.database, column, int(recorded["fingerprint"]), int(recorded["rows"]))
    except (ValueError, KeyError, TypeError):  # not a copy this module made
        return None
    return held if held.current(store) else None  # else emptied by a restart, or the table changed since


def fingerprint(store: Store) -> int:
    """The fingerprint of ``laion``'s rows as they are now (see the module's description)."""
    return int(store.query(f"SELECT ({FINGERPRINT_SQL}) AS f", {"held_db": store.database}).column("f")[0].as_py())


def free_memory(store: Store) -> int | None:
    """Bytes the engine can still take: under its memory limit, and (where known) free on its machine."""
    try:
        limit = store.query("SELECT toUInt64(value) AS v FROM system.server_settings "
                            "WHERE name = 'max_server_memory_usage'").column("v").to_pylist()
        used = store.query("SELECT toInt64(value) AS v FROM system.metrics "
                           "WHERE metric = 'MemoryTracking'").column("v").to_pylist()
    except QueryError:
        limit, used = [], []
    known = [int(limit[0]) - int(used[0] if used else 0)] if limit and limit[0] else []
    if store.path is not None:
        local = _machine_available()
        known += [local] if local is not None else []
    else:
        try:  # a server's view of its machine (not every engine has this table)
            found = store.query("SELECT toUInt64(value) AS v FROM system.asynchronous_metrics "
                                "WHERE metric = 'OSMemoryAvailable'").column("v").to_pylist()
            known += [int(found[0])] if found else []
        except QueryError:
            pass
    return min(known) if known else None


def _machine_available() -> int | None:
    """This machine's available memory (Linux's MemAvailable), or None where it does not say."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _count(store: Store, table: str = TABLE) -> int:
    return int(store.query(f"SELECT count() AS n FROM {store.table(table)}").column("n")[0].as_py())

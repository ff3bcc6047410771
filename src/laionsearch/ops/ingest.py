"""Load LAION parts into the ``laion`` table: streaming, atomic and idempotent per part.

For each part: every selected part is checked before anything is written;
rows stream from the memory-mapped ``.npy`` files and the parquet row groups
in batches into a staging table; once the staging table holds exactly the
part's rows (merged into one data part with its HNSW graphs built, when
``laion`` has vector indexes), ``ALTER TABLE laion REPLACE PARTITION`` swaps
them in as one atomic step. A crash leaves at most a staging table, which the next run
drops. A part already in the store with the same row count is skipped, and
re-ingesting replaces rather than duplicates.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..cluster import choose_shard, distributed_engine, everywhere, on_cluster, placement, shard_loads
from ..errors import ArgumentError, IngestError, LaionsearchError, PartError, first_line
from . import space
from .check import detached_parts
from .index import build_indexes_on, index_definitions, index_parameters
from ..release.layouts import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, CheckedPart, NpyInfo, check_part, find_parts
from ..progress import Progress
from ..release.datasets import MODEL_FOR_DIM
from ..schema import (ID_STRIDE, STAGE_PREFIX, data_parts, ensure_table, is_bfloat16, local_table, prompt_cleanup,
                      record_origin, stored_dim, stored_origin, stored_parts, stored_storage, table_columns,
                      to_bfloat16)
from ..store import Store

DEFAULT_BATCH_ROWS = 16384
#: A staging table's Distributed table (on a cluster), by which rows reach one shard's stage.
DISTRIBUTED_SUFFIX = "_all"


@dataclass(frozen=True)
class PartResult:
    """What happened to one part."""

    part: int
    rows: int
    seconds: float
    skipped: bool
    shard: int | None = None  # the cluster shard that holds it (None without a cluster)


@dataclass
class IngestReport:
    """Summary of an ``ingest`` run."""

    parts: list[PartResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Rows written (skipped parts not counted)."""
        return sum(p.rows for p in self.parts if not p.skipped)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        done = [p for p in self.parts if not p.skipped]
        skipped = len(self.parts) - len(done)
        text = (
            f"ingested {len(done)} part(s), {self.rows:,} rows in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )
        return text + (f"; {skipped} part(s) already in the store, skipped" if skipped else "")


def ingest(
    store: Store,
    folder: str | Path,
    parts: list[int] | None = None,
    *,
    force: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    storage: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Load parts from ``folder`` (all found, or ``parts``) into ``store``.

    Raises ``PartError`` before writing anything if any selected part is
    malformed, and ``IngestError`` if loading fails (that part is not kept).
    ``force`` re-loads parts that are already stored. ``storage`` (see
    ``schema.STORAGES``) applies when the table is created; default float32.
    ``model`` (the CLIP model that made the vectors) and ``dataset`` are recorded
    in the store, so text and image queries use that model; without them a new
    store records LAION's model for the vectors' dimension.
    """
    if batch_rows <= 0:
        raise ArgumentError("batch size must be at least 1 row")
    progress = progress or Progress()
    started = time.perf_counter()
    checked = [check_part(p) for p in find_parts(folder, parts)]
    dims = {c.dim for c in checked}
    if len(dims) > 1:
        raise PartError(f"{folder}: parts have different dimensions: {sorted(dims)}")
    existing_dim = stored_dim(store)
    if existing_dim is not None and dims != {existing_dim}:
        raise PartError(
            f"{folder}: parts have dimension {dims.pop()}, but the store holds {existing_dim}-d vectors; "
            "use another --db for a different model"
        )
    too_long = [c.number for c in checked if c.rows >= ID_STRIDE]
    if too_long:
        raise PartError(f"part {too_long[0]}: more than {ID_STRIDE - 1:,} rows, ids would collide")

    # Whether every vector's length is known: a store whose older parts were never measured stays unknown.
    measured = existing_dim is None or "unit_error" in stored_origin(store)
    ensure_table(store, storage)
    if model or dataset or not stored_origin(store).get("model"):
        record_origin(store, dataset=dataset, model=model or MODEL_FOR_DIM.get(next(iter(dims), 0)))
    prompt = prompt_cleanup(store)  # an older table gets the settings now (effective from the next run)
    _drop_stages(store)
    existing = stored_parts(store)
    todo = [p for p in checked if force or existing.get(p.number) != p.rows]
    shards = _Placement.of(store) if store.cluster is not None else None
    if todo:
        # On a cluster each shard's disk takes only its parts: the fullest shard's share must fit.
        by_shard: dict[int | None, list[CheckedPart]] = {}
        for part in todo:
            by_shard.setdefault(shards.shard_of(part) if shards else None, []).append(part)
        need = max(_bytes_needed(store, group) for group in by_shard.values())
        space.require(store, need, f"ingesting {len(todo)} part(s)", IngestError)
    report = IngestReport()
    on = on_cluster(store)
    # Background merges would compete with the ingest for CPU and memory; they resume afterwards.
    store.execute(f"SYSTEM STOP MERGES{on} {local_table(store)}")
    try:
        for part in checked:
            shard = shards.shard_of(part) if shards else None
            if not force and existing.get(part.number) == part.rows:
                report.parts.append(PartResult(part.number, part.rows, 0.0, skipped=True, shard=shard))
                continue
            report.parts.append(_ingest_part(store, part, batch_rows, progress, shard, measured))
    finally:
        store.execute(f"SYSTEM START MERGES{on} {local_table(store)}")
    if any(existing.get(p.part) for p in report.parts if not p.skipped):
        if not (prompt and space.await_outdated_parts(store)):
            progress.finish("the engine deletes the replaced copies of re-ingested parts in the next minutes "
                            "(before the command ends from the next run on)")
    report.seconds = time.perf_counter() - started
    return report


class _Placement:
    """Which shard each part goes to: where its rows already are, else the shard with the fewest rows."""

    def __init__(self, loads: dict[int, int], where: dict[int, int]):
        self.loads, self.where = loads, where

    @classmethod
    def of(cls, store: Store) -> "_Placement":
        """The store's shards with their rows, and where its parts are."""
        parts = data_parts(store)
        return cls(shard_loads(store, parts), placement(parts))

    def shard_of(self, part: CheckedPart) -> int:
        shard = self.where.get(part.number)
        if shard is None:
            shard = self.where[part.number] = choose_shard(self.loads)
            self.loads[shard] += part.rows
        return shard


def _ingest_part(store: Store, part: CheckedPart, batch_rows: int, progress: Progress,
                 shard: int | None = None, measured: bool = False) -> PartResult:
    started = time.perf_counter()
    stage = f"{STAGE_PREFIX}{part.number}"
    on = on_cluster(store)
    _drop_stage(store, stage)
    store.execute(f"CREATE TABLE {store.table(stage)}{on} AS {local_table(store)}")
    # With vector indexes, every inserted batch would get an HNSW graph of its own, rebuilt
    # on each merge: stage without them, merge once, then build one graph for the part.
    indexes = index_definitions(store)
    for ix in indexes:
        store.execute(f"ALTER TABLE {store.table(stage)}{on} DROP INDEX {ix['name']}")
    # Merging the staged batches would cost more time and memory than the insert itself.
    store.execute(f"SYSTEM STOP MERGES{on} {store.table(stage)}")
    # On a cluster the rows travel through a Distributed table over the stages, to one shard's.
    into, settings = stage, None
    if shard is not None:
        into, settings = stage + DISTRIBUTED_SUFFIX, {"insert_shard_id": shard, "distributed_foreground_insert": 1}
        store.execute(f"CREATE TABLE {store.table(into)} AS {store.table(stage)} "
                      f"ENGINE = {distributed_engine(store, stage)}")
    progress.start(f"part {part.number}" + (f" -> shard {shard}" if shard is not None else ""), part.rows)
    columns = table_columns(store)  # a store made by an older laionsearch has fewer: it keeps its own
    lengths = UnitError()
    try:
        bfloat16 = is_bfloat16(stored_storage(store))
        for batch in _prefetch(read_batches(part, batch_rows, lengths, bfloat16)):
            store.insert_arrow(into, batch.select(columns) if batch.num_columns != len(columns) else batch, settings)
            progress.advance(batch.num_rows)
        staged = store.query(f"SELECT count() AS n FROM {store.table(into)}").column("n")[0].as_py()
        if staged != part.rows:
            raise IngestError(f"staged {staged} rows, expected {part.rows}")
        if indexes:
            build_indexes_on(store, stage, indexes)
        if measured:  # recorded before the part is visible: a crash can only leave the record too large
            record_origin(store, unit_error=lengths.worst)  # measured on the values as stored
        # The one step that makes the part visible: atomic (per shard), and replaces any older copy.
        store.execute(f"ALTER TABLE {local_table(store)}{on} REPLACE PARTITION {part.number:d} "
                      f"FROM {store.table(stage)}{_from_empty(store)}")
        _drop_detached(store, part.number)
    except LaionsearchError as exc:
        progress.finish(f"part {part.number}: failed")
        raise IngestError(f"part {part.number}: {exc}") from None
    finally:
        _drop_stage(store, stage)
    seconds = time.perf_counter() - started
    indexed = f", {', '.join(ix['name'] for ix in indexes)} built" if indexes else ""
    where = f" on shard {shard}" if shard is not None else ""
    progress.finish(f"part {part.number}: {part.rows:,} rows{where} in {seconds:.1f} s{indexed}")
    return PartResult(part.number, part.rows, seconds, skipped=False, shard=shard)


def _from_empty(store: Store) -> str:
    """On shards other than the part's, the swap's source is empty and must drop their copy of the
    part: ClickHouse 26.x refuses that unless asked (older servers did it by default)."""
    if not on_cluster(store):
        return ""
    known = store.query("SELECT count() AS n FROM system.settings WHERE name = {n:String}",
                        {"n": "allow_replace_partition_from_empty_source"}).column("n")[0].as_py()
    return " SETTINGS allow_replace_partition_from_empty_source = 1" if known else ""


def _drop_stage(store: Store, stage: str) -> None:
    """Drop a staging table everywhere, with its Distributed table on a cluster.

    With SYNC: its files go at once, not ~8 minutes later (the engine's default delay),
    which a process that ends right away would never see."""
    store.execute(f"DROP TABLE IF EXISTS {store.table(stage + DISTRIBUTED_SUFFIX)} SYNC")
    store.execute(f"DROP TABLE IF EXISTS {store.table(stage)}{on_cluster(store)} SYNC")


def _bytes_needed(store: Store, parts: list[CheckedPart]) -> int:
    """Disk the parts will take: both embedding columns as stored, the metadata (at most its
    parquet size) and, when ``laion`` has vector indexes, each part's graphs."""
    per_value = 2 if is_bfloat16(stored_storage(store)) else 4
    indexes = [index_parameters(ix["type_full"]) for ix in index_definitions(store)]
    total = 0
    for part in parts:
        total += part.rows * part.dim * per_value * 2 + part.part.metadata.stat().st_size
        total += sum(space.index_bytes(part.rows, part.dim, q, m) for q, m in indexes)
    return total


def _drop_detached(store: Store, number: int) -> None:
    """Remove the data parts of part ``number`` that the engine set aside as damaged: the part
    was just loaded again whole, so they are superseded (and would keep `check` failing).

    Not on a cluster of other servers: a statement there runs on every shard or on none,
    and only one shard has such a data part (`check` names it)."""
    if on_cluster(store):
        return
    for detached in detached_parts(store):
        if detached["partition_id"] == str(number):
            store.execute(f"ALTER TABLE {local_table(store)} DROP DETACHED PART {{name:String}} "
                          "SETTINGS allow_drop_detached = 1", {"name": detached["name"]})


def _drop_stages(store: Store) -> None:
    """Drop staging tables left by a crashed run, on every shard (they never hold visible data)."""
    names = store.query(
        f"SELECT DISTINCT name FROM {everywhere(store, 'system.tables')} "
        "WHERE database = {db:String} AND startsWith(name, {p:String})",
        {"db": store.database, "p": STAGE_PREFIX},
    ).column("name").to_pylist()
    for name in sorted(n for n in names if not n.endswith(DISTRIBUTED_SUFFIX)):
        _drop_stage(store, name)


class UnitError:
    """The largest |length - 1| of the vectors seen, per embedding column (search uses it to rank exactly
    by dot product, which is cheaper than cosine distance: ``ops.exact``)."""

    def __init__(self):
        self.worst = {"image": 0.0, "text": 0.0}

    def add(self, column: str, vectors: np.ndarray) -> None:
        lengths = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
        self.worst[column] = max(self.worst[column], float(np.max(np.abs(lengths - 1.0), initial=0.0)))


def read_batches(part: CheckedPart, batch_rows: int = DEFAULT_BATCH_ROWS,
                 lengths: UnitError | None = None, bfloat16: bool = False) -> Iterator[pa.Table]:
    """Yield the part's rows as Arrow tables in the ``laion`` column layout, ``batch_rows`` at a time
    (measuring the vectors' lengths into ``lengths``; with ``bfloat16``, the vectors rounded to it,
    as a bfloat16 store keeps them)."""
    offset = 0
    # Plain reads, not np.memmap: mapped pages would count towards the process's RSS.
    with open(part.img.path, "rb") as img, open(part.text.path, "rb") as text:
        img.seek(part.img.data_offset)
        text.seek(part.text.data_offset)
        try:
            meta = pq.ParquetFile(part.part.metadata)
            present = set(meta.schema_arrow.names)
            wanted = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in present]
            for batch in meta.iter_batches(batch_size=batch_rows, columns=wanted):
                n = batch.num_rows
                if offset + n > part.rows:
                    break
                img_rows, text_rows = _read_rows(img, part.img, n), _read_rows(text, part.text, n)
                _check_finite(part.img, img_rows, offset)
                _check_finite(part.text, text_rows, offset)
                img_rows, text_rows = _widen(img_rows), _widen(text_rows)
                if bfloat16:  # rounded here, to nearest: the engine would truncate (up to 2^-7 of a value)
                    img_rows, text_rows = to_bfloat16(img_rows), to_bfloat16(text_rows)
                if lengths is not None:
                    lengths.add("image", img_rows)
                    lengths.add("text", text_rows)
                yield _to_table(part, offset, batch, img_rows, text_rows)
                offset += n
        except (pa.ArrowException, OSError) as exc:
            raise PartError(f"{part.part.metadata}: {first_line(exc)}") from None
    if offset != part.rows:
        raise PartError(f"{part.part.metadata}: holds {offset} rows where its footer says {part.rows}")


def _read_rows(f, info: NpyInfo, n: int) -> np.ndarray:
    block = np.fromfile(f, dtype=info.dtype, count=n * info.dim)
    if block.size != n * info.dim:
        raise PartError(f"{info.path}: ended early (file changed while reading?)")
    return block.reshape(n, info.dim)


def _check_finite(info: NpyInfo, block: np.ndarray, offset: int) -> None:
    """Refuse NaN or infinite embeddings: they would make every distance NaN and searches return arbitrary rows."""
    bad_rows = ~np.isfinite(block).all(axis=1)
    if bad_rows.any():
        first = offset + int(np.argmax(bad_rows))
        raise PartError(
            f"{info.path}: {int(bad_rows.sum()):,} vector(s) with NaN or infinite values in rows "
            f"{offset:,}-{offset + len(block) - 1:,}, the first at row {first:,}"
        )


def _to_table(part: CheckedPart, offset: int, meta: pa.RecordBatch, img: np.ndarray, text: np.ndarray) -> pa.Table:
    n = meta.num_rows
    rows = np.arange(offset, offset + n, dtype=np.int64)
    try:
        similarity = pc.fill_null(meta.column("similarity").cast(pa.float32()), float("nan"))
    except pa.ArrowException as exc:
        raise PartError(f"{part.part.metadata}: column similarity is not numeric ({first_line(exc)})") from None
    return pa.table(
        {
            "id": pa.array(part.number * ID_STRIDE + rows),
            "url": _text(part, meta, "url"),
            "caption": _text(part, meta, "caption"),
            "NSFW": _text(part, meta, "NSFW"),
            "similarity": similarity,
            "image_embedding": _vectors(img, part.dim),
            "text_embedding": _vectors(text, part.dim),
            "part": pa.array(np.full(n, part.number, dtype=np.uint32)),
            **{name: _size(part, meta, name) for name in ("width", "height", "original_width", "original_height")},
            **{name: _text(part, meta, name) for name in ("LICENSE", "key", "image_path")},
        }
    )


def _size(part: CheckedPart, meta: pa.RecordBatch, name: str) -> pa.Array:
    """A pixel size as UInt32, 0 where the release has none (null, negative or no such column)."""
    if name not in meta.schema.names:
        return pa.array(np.zeros(meta.num_rows, dtype=np.uint32))
    try:
        values = pc.fill_null(meta.column(name).cast(pa.int64()), 0)
    except pa.ArrowException as exc:
        raise PartError(f"{part.part.metadata}: column {name} is not a whole number ({first_line(exc)})") from None
    return pc.max_element_wise(values, 0).cast(pa.uint32(), safe=False)


def _text(part: CheckedPart, meta: pa.RecordBatch, name: str) -> pa.Array:
    """A string column with nulls stored as '' (the guide's schema has no NULLs); '' where the part has no such column."""
    if name not in meta.schema.names:
        return pa.array([""] * meta.num_rows, pa.string())
    try:
        return pc.fill_null(meta.column(name).cast(pa.string()), "")
    except pa.ArrowException as exc:
        raise PartError(f"{part.part.metadata}: column {name} is not text ({first_line(exc)})") from None


def _widen(block: np.ndarray) -> np.ndarray:
    # Widened to float32 here, in the reader thread, not by the engine: the engine also
    # accepts float16 but converts it ~30% slower on the inserting thread (measured).
    return np.ascontiguousarray(block, dtype=np.float32)


def _vectors(block: np.ndarray, dim: int) -> pa.Array:
    flat = block.reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), dim)


def _prefetch(batches: Iterator[pa.Table], depth: int = 1) -> Iterator[pa.Table]:
    """Iterate ``batches`` in a helper thread, ``depth`` ahead, so reading overlaps inserting."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                if stop.is_set():
                    return
                slots.put(item)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(exc)
            return
        slots.put(done)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.01)

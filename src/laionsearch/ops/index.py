"""HNSW vector indexes on the embedding columns, managed through ClickHouse.

``create_index`` runs the guide's statements (``ADD INDEX … TYPE
vector_similarity('hnsw', 'cosineDistance', dim, quantization, M,
ef_construction)`` then ``MATERIALIZE INDEX``) and follows the materialising
mutation part by part. Parts ingested later are indexed as they are written,
because their staging table is created like ``laion``, index included.

On a cluster every statement runs on every shard (``ON CLUSTER``) and the catalogue is
read from every shard: each shard builds the graphs of its own parts, in parallel.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from ..cluster import everywhere, on_cluster
from ..errors import ArgumentError, IndexingError, QueryError
from ..progress import Progress
from ..schema import EMBEDDING_COLUMNS, TABLE, data_parts, local_name, local_table, prompt_cleanup, stored_dim
from ..store import Store
from . import indexcache, space

QUANTIZATIONS = ("f64", "f32", "f16", "bf16", "i8", "b1")
#: The guide's parameters.
DEFAULT_QUANTIZATION, DEFAULT_M, DEFAULT_EF_CONSTRUCTION = "bf16", 64, 256
_POLL_SECONDS = 0.5
#: Index builds (mutation ids) this process started or resumed. On an embedded store, which
#: one process at a time can open, any other unfinished build was left by a killed process.
_followed: set[str] = set()


#: The caption's full-text index: tokens split at non-alphanumerics, lower-cased (``--caption-has``, ``--hybrid``).
CAPTION_INDEX = "caption_index"
CAPTION_INDEX_TYPE = "text(tokenizer = splitByNonAlpha, preprocessor = lower(caption))"


def index_name(column: str) -> str:
    """``image`` -> ``image_index`` (the guide's names)."""
    return f"{column}_index"


def columns_for(choice: str) -> list[str]:
    """``image``, ``text``, ``both`` or ``caption`` (the caption's text index)."""
    if choice == "both":
        return list(EMBEDDING_COLUMNS)
    if choice not in EMBEDDING_COLUMNS and choice != "caption":
        raise ArgumentError(f"unknown column {choice!r}; choose image, text, both or caption")
    return [choice]


@dataclass(frozen=True)
class IndexStatus:
    """One vector index as the engine reports it."""

    name: str
    column: str
    definition: str  # e.g. vector_similarity('hnsw', 'cosineDistance', 512, 'bf16', 64, 256)
    state: str  # built, building, or interrupted (a killed process's build: `index create` finishes it)
    parts_indexed: int
    parts_total: int
    bytes_on_disk: int
    bytes_in_memory: int  # the index's size once loaded into the engine's vector index cache


def create_index(
    store: Store,
    column: str = "image",
    *,
    quantization: str = DEFAULT_QUANTIZATION,
    m: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    over_cache: bool = False,
    progress: Progress | None = None,
) -> float:
    """Add and materialise the HNSW index on ``column`` (image or text); return the seconds it took.

    Says what the index will take in memory, and refuses (IndexingError) when that and
    the other index exceed the engine's vector index cache, unless ``over_cache``. If
    the index exists with an unfinished build (a killed process's), that build is
    followed to the end instead; its own parameters stay."""
    if column == "caption":
        return create_caption_index(store, progress)
    if column not in EMBEDDING_COLUMNS:
        raise ArgumentError(f"unknown column {column!r}; choose image, text or caption")
    if quantization not in QUANTIZATIONS:
        raise ArgumentError(f"unknown quantization {quantization!r}; choose one of: {', '.join(QUANTIZATIONS)}")
    if m < 2 or ef_construction < 1:
        raise ArgumentError("--m must be at least 2 and --ef-construction at least 1")
    dim = stored_dim(store)
    if dim is None:
        raise IndexingError(f"store {store.location} holds no rows yet; ingest parts before creating an index")
    name = index_name(column)
    progress = progress or Progress()
    started = time.perf_counter()
    table, on = local_table(store), on_cluster(store)
    if name in {s.name for s in index_status(store)}:
        interrupted = unfinished_builds(store, name)
        if not interrupted:
            raise IndexingError(f"index {name} exists already; `laionsearch index drop --column {column}` first")
        # A build that a killed process left: the engine resumes it; follow it to the end.
        progress.finish(f"finishing the interrupted build of {name}")
        _followed.update(b["mutation_id"] for b in interrupted)
        if store.engine.kind == "embedded":  # undo `pause_interrupted_builds` (this process only)
            store.execute(f"SYSTEM START MERGES {table}")
    else:
        parts = data_parts(store)
        several = Counter(p["partition"] for p in parts)
        merging = sum(p["bytes"] for p in parts if several[p["partition"]] > 1)
        # Each shard's cache holds the graphs of its own rows: the fullest shard is the one that must fit.
        per_shard = Counter()
        for p in parts:
            per_shard[p["shard"]] += int(p["rows"])
        rows, share = max(per_shard.values()), max(per_shard.values()) / sum(per_shard.values())
        memory = space.index_bytes(rows, dim, quantization, m)
        vector_indexes = [s for s in index_status(store) if s.column in EMBEDDING_COLUMNS]
        others = int(sum(s.bytes_in_memory for s in vector_indexes) * share)
        progress.finish(indexcache.check_fits(store, memory, name, others=others, over_cache=over_cache))
        space.require(store, memory + merging, f"building {name}", IndexingError)
        compact(store, progress)
        store.execute(
            f"ALTER TABLE {table}{on} ADD INDEX {name} {EMBEDDING_COLUMNS[column]} TYPE vector_similarity("
            f"'hnsw', 'cosineDistance', {dim:d}, '{quantization}', {m:d}, {ef_construction:d})"
        )
        store.execute(f"ALTER TABLE {table}{on} MATERIALIZE INDEX {name} SETTINGS mutations_sync = 0")
        _followed.update(b["mutation_id"] for b in unfinished_builds(store, name))
    try:
        _follow(store, name, progress)
    except BaseException:
        # An index that never finished would make searches silently mix indexed and brute-force parts.
        _cancel_builds(store, name)
        store.execute(f"ALTER TABLE {table}{on} DROP INDEX IF EXISTS {name}")
        raise
    return time.perf_counter() - started


def create_caption_index(store: Store, progress: Progress | None = None) -> float:
    """Add and build the caption's text index (``hasAllTokens``/``hasAnyTokens`` read it); return the seconds."""
    if stored_dim(store) is None:
        raise IndexingError(f"store {store.location} holds no rows yet; ingest parts before creating an index")
    if has_caption_index(store):
        raise IndexingError(f"index {CAPTION_INDEX} exists already; `laionsearch index drop --column caption` first")
    progress = progress or Progress()
    started = time.perf_counter()
    table, on = local_table(store), on_cluster(store)
    store.execute(f"ALTER TABLE {table}{on} ADD INDEX {CAPTION_INDEX} caption TYPE {CAPTION_INDEX_TYPE}")
    store.execute(f"ALTER TABLE {table}{on} MATERIALIZE INDEX {CAPTION_INDEX} SETTINGS mutations_sync = 0")
    try:
        _follow(store, CAPTION_INDEX, progress)
    except BaseException:
        _cancel_builds(store, CAPTION_INDEX)
        store.execute(f"ALTER TABLE {table}{on} DROP INDEX IF EXISTS {CAPTION_INDEX}")
        raise
    return time.perf_counter() - started


def has_caption_index(store: Store) -> bool:
    """Whether the caption has its text index (searches ask this; cached by the store)."""
    return store.fact("caption_index", lambda: any(ix["name"] == CAPTION_INDEX for ix in _all_indexes(store)))


def compact(store: Store, progress: Progress | None = None) -> None:
    """Merge each LAION part's data parts into one, so that it gets one HNSW graph, built once.

    Searches visit every data part's graph; merging after indexing would rebuild them.
    (About 15 s and 2 GB RSS per million rows, against minutes for the graph itself.)
    """
    progress = progress or Progress()
    per_partition = Counter(int(p["partition"]) for p in data_parts(store))
    several = sorted(number for number, count in per_partition.items() if count > 1)
    if not several:
        return
    progress.start("merging data parts", len(several))
    on = on_cluster(store)
    for number in several:
        try:
            # Without this setting a merge that cannot run (e.g. no disk space) returns silently. On a
            # cluster the shards without the part would fail it ("no parts inside partition"): there
            # the result is checked below instead.
            store.execute(f"OPTIMIZE TABLE {local_table(store)}{on} PARTITION {number:d} FINAL"
                          + ("" if on else " SETTINGS optimize_throw_if_noop = 1"))
        except QueryError as exc:
            progress.finish(f"part {number}: merge failed")
            raise IndexingError(f"could not merge part {number}'s data parts before the build: {exc}") from None
        progress.advance(1)
    merged = Counter(int(p["partition"]) for p in data_parts(store)) if on else Counter()
    still = [number for number in several if merged[number] > 1]
    if still:
        progress.finish(f"part {still[0]}: merge failed")
        raise IndexingError(f"could not merge the data parts of part(s) {', '.join(map(str, still))} before the "
                            "build (the shard's disk? its log says why)")
    if prompt_cleanup(store):
        space.await_outdated_parts(store)  # the merged-away parts' disk, back before the build needs it
    progress.finish()


def _follow(store: Store, name: str, progress: Progress) -> None:
    """Wait for the ``MATERIALIZE INDEX name`` mutation to finish, advancing ``progress`` part by part."""
    total = len(data_parts(store))
    progress.start(f"building {name}", total)
    done = 0
    while True:
        # The latest build of the index on each shard.
        rows = store.query(
            "SELECT shardNum() AS shard, parts_to_do, is_done, latest_fail_reason "
            f"FROM {everywhere(store, 'system.mutations')} "
            "WHERE database = {db:String} AND table = {t:String} AND position(command, {n:String}) > 0 "
            "ORDER BY create_time DESC LIMIT 1 BY shard",
            {"db": store.database, "t": local_name(store), "n": f"MATERIALIZE INDEX {name}"},
        ).to_pylist()
        if all(r["is_done"] for r in rows):
            break
        failed = next((r["latest_fail_reason"] for r in rows if r["latest_fail_reason"]), "")
        if failed:
            raise IndexingError(f"building {name} failed: {failed.splitlines()[0]}")
        now_done = max(0, total - sum(int(r["parts_to_do"]) for r in rows))
        progress.advance(now_done - done)
        done = now_done
        time.sleep(_POLL_SECONDS)
    progress.advance(total - done)
    progress.finish()


def drop_index(store: Store, column: str = "image") -> bool:
    """Remove the index on ``column`` (image, text or caption); a build still running or left by a
    killed process is cancelled first. Returns whether there was such a build."""
    name = index_name(column)
    if name not in {s.name for s in index_status(store)}:
        raise IndexingError(f"there is no index {name}")
    cancelled = _cancel_builds(store, name)
    store.execute(f"ALTER TABLE {local_table(store)}{on_cluster(store)} DROP INDEX {name}")
    return cancelled


def index_parameters(type_full: str) -> tuple[str, int]:
    """(quantization, M) of a vector_similarity definition (the engine's defaults for the 3-argument form)."""
    args = [a.strip().strip("'") for a in type_full.partition("(")[2].rstrip(")").split(",")]
    return (args[3], int(args[4])) if len(args) == 6 else ("bf16", 32)


def unfinished_builds(store: Store, name: str | None = None) -> list[dict]:
    """Unfinished ``MATERIALIZE INDEX`` mutations on ``laion`` (of index ``name``, or all):
    mutation_id, index, parts_to_do_names (the data parts still to build)."""
    rows = store.query(
        "SELECT mutation_id, extract(command, 'MATERIALIZE INDEX (\\w+)') AS index, parts_to_do_names "
        f"FROM {everywhere(store, 'system.mutations')} WHERE database = {{db:String}} "
        "AND table = {t:String} AND NOT is_done AND position(command, 'MATERIALIZE INDEX') > 0",
        {"db": store.database, "t": local_name(store)},
    ).to_pylist()
    return [r for r in rows if name is None or r["index"] == name]


def _state(store: Store, builds: list[dict]) -> str:
    if not builds:
        return "built"
    return "interrupted" if any(_interrupted(store, b) for b in builds) else "building"


def _interrupted(store: Store, build: dict) -> bool:
    return store.engine.kind == "embedded" and build["mutation_id"] not in _followed


def pause_interrupted_builds(store: Store) -> None:
    """Keep a killed process's index build from resuming inside a process that only searches.

    The engine resumes unfinished builds in the background whenever a store opens, which
    made searches crawl; on an embedded store such builds wait (merges stopped for this
    process only) until `index create` finishes them or `index drop` cancels them."""
    if store.engine.kind == "embedded" and any(_interrupted(store, b) for b in unfinished_builds(store)):
        store.execute(f"SYSTEM STOP MERGES {local_table(store)}")


def _cancel_builds(store: Store, name: str) -> bool:
    builds = unfinished_builds(store, name)
    for build in builds:
        store.execute(f"KILL MUTATION{on_cluster(store)} WHERE database = {{db:String}} AND table = {{t:String}} "
                      "AND mutation_id = {m:String} SYNC",
                      {"db": store.database, "t": local_name(store), "m": build["mutation_id"]})
    return bool(builds)


def index_status(store: Store) -> list[IndexStatus]:
    """The vector indexes of the ``laion`` table, with how many data parts each covers.

    Read from the engine's catalogue alone (so it works on a server): a data
    part is indexed unless a running ``MATERIALIZE INDEX`` still lists it.
    """
    if not store.has_table(TABLE):
        return []
    parts = {p["name"] for p in data_parts(store)}
    builds = unfinished_builds(store)
    by_column = {v: k for k, v in EMBEDDING_COLUMNS.items()}
    statuses = []
    for ix in _all_indexes(store):
        mine = [b for b in builds if b["index"] == ix["name"]]
        statuses.append(IndexStatus(
            name=ix["name"],
            column=by_column.get(ix["expr"], ix["expr"]),
            definition=ix["type_full"],
            state=_state(store, mine),
            parts_indexed=len(parts.difference(*(b["parts_to_do_names"] for b in mine))),
            parts_total=len(parts),
            bytes_on_disk=int(ix["disk"]),
            bytes_in_memory=int(ix["mem"]),
        ))
    return statuses


def index_definitions(store: Store) -> list[dict]:
    """Each vector index on ``laion`` as the engine's catalogue has it: name, expr and
    type_full (enough to recreate it elsewhere), and its sizes (disk, mem)."""
    return [ix for ix in _all_indexes(store) if ix["type"] == "vector_similarity"]


def _all_indexes(store: Store) -> list[dict]:
    """The vector indexes and the caption's text index (with their type)."""
    return store.query(
        "SELECT name, type, expr, type_full, sum(data_compressed_bytes) AS disk, sum(data_uncompressed_bytes) AS mem "
        f"FROM {everywhere(store, 'system.data_skipping_indices')} WHERE database = {{db:String}} "
        "AND table = {t:String} AND type IN ('vector_similarity', 'text') GROUP BY name, type, expr, type_full "
        "ORDER BY name",
        {"db": store.database, "t": local_name(store)},
    ).to_pylist()


def build_indexes_on(store: Store, table: str, definitions: list[dict]) -> None:
    """Merge ``table`` into one data part, then add and build ``definitions`` on it (blocking; on every shard)."""
    qualified, on = store.table(table), on_cluster(store)
    store.execute(f"SYSTEM START MERGES{on} {qualified}")
    store.execute(f"OPTIMIZE TABLE {qualified}{on} FINAL")
    for ix in definitions:
        store.execute(f"ALTER TABLE {qualified}{on} ADD INDEX {ix['name']} {ix['expr']} TYPE {ix['type_full']}")
        store.execute(f"ALTER TABLE {qualified}{on} MATERIALIZE INDEX {ix['name']} SETTINGS mutations_sync = 2")


def indexed_columns(store: Store) -> set[str]:
    """Columns (image/text) with a vector index (searches ask this; cached by the store)."""
    return store.fact("indexed", lambda: _indexed(store))


def _indexed(store: Store) -> set[str]:
    pause_interrupted_builds(store)
    exprs = {ix["expr"] for ix in index_definitions(store)}
    return {name for name, col in EMBEDDING_COLUMNS.items() if col in exprs}

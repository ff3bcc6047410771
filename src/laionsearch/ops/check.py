"""Store health: parts the engine set aside, data that fails its checksums, row counts against the release.

When a data part fails its checks as a store opens, the engine detaches it (moves
it aside as ``broken-on-start_…``) and carries on without its rows: the store then
looks whole but is missing a part. ``check_store`` finds that and every other
sign of damage, and says how to repair each (re-ingest that part).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..cluster import everywhere
from ..release.layouts import check_part, find_parts
from ..schema import TABLE, local_name, local_table, stored_parts
from ..store import Store


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the store, and how to fix it."""

    part: int | None  # the LAION part affected, when known
    problem: str
    fix: str


def detached_parts(store: Store) -> list[dict]:
    """Data parts of ``laion`` the engine detached (name, reason, partition_id, shard: 0 without a cluster)."""
    return store.query(
        f"SELECT shardNum() AS shard, name, reason, partition_id FROM {everywhere(store, 'system.detached_parts')} "
        "WHERE database = {db:String} AND table = {t:String} ORDER BY name",
        {"db": store.database, "t": local_name(store)},
    ).to_pylist()


def check_store(store: Store, folder: str | Path | None = None) -> list[Problem]:
    """Everything wrong with the store: detached data parts, parts failing the engine's checksums
    (``CHECK TABLE``: on a cluster of other servers, this server's shard only), and, given the
    release ``folder``, parts whose row count differs from it."""
    if not store.has_table(TABLE):
        return []
    problems = []
    for detached in detached_parts(store):
        number = _number(detached["partition_id"])
        shard = f" on shard {detached['shard']}" if store.cluster is not None else ""
        problems.append(Problem(
            number, f"data part {detached['name']}{shard} was set aside by the engine "
            f"({detached['reason'] or 'detached'})", _fix(number),
        ))
    # CHECK TABLE has no ON CLUSTER form: it reads the local table of the server it runs on, if any.
    checked = store.query(f"CHECK TABLE {local_table(store)} SETTINGS check_query_single_value_result = 0") \
        if store.has_table(local_name(store)) else pa.table({"is_passed": []})
    for row in checked.to_pylist():
        if not row["is_passed"]:
            number = _number(row["part_path"].partition("_")[0])
            problems.append(Problem(number, f"data part {row['part_path']} fails its checks: {row['message']}",
                                    _fix(number)))
    if folder is not None:
        stored = stored_parts(store)
        for part in find_parts(folder):
            rows = check_part(part).rows
            if stored.get(part.number) != rows:
                have = f"{stored[part.number]:,} rows" if part.number in stored else "none of its rows"
                problems.append(Problem(part.number, f"part {part.number}: the store has {have}, the release "
                                        f"files {rows:,}", _fix(part.number)))
    return problems


def _number(partition_id: str) -> int | None:
    return int(partition_id) if partition_id.isdigit() else None


def _fix(number: int | None) -> str:
    if number is None:
        return "re-ingest the affected parts with `laionsearch ingest DIR --force`"
    return f"re-ingest it: laionsearch ingest DIR --parts {number} --force"

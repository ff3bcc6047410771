"""Where ``laion``'s rows live: one table on one server, or a table on every shard of a ClickHouse cluster.

With a cluster (``--cluster NAME`` or ``?cluster=NAME``) every shard holds ``laion_local``,
the MergeTree table with the vector indexes, and ``laion`` is a ``Distributed`` table over
them: a search reads ``laion`` and ClickHouse runs it on every shard, each with its own
index, and merges the shards' top k. A LAION part lives whole on one shard, so the per-part
atomic swap still holds; ``ingest`` puts a new part on the shard with the fewest rows and
a re-ingested one where its rows are. Statements that change tables run ``ON CLUSTER``
(on every shard); the engine's catalogue (``system.parts``, ``system.mutations``…) is
read from every shard through the ``cluster()`` table function.

When every shard is this server itself (``system.clusters.is_local``), as in a one-shard
cluster inside chDB, those statements simply run here: chDB refuses ``ON CLUSTER``
("Replicated DDL queries are disabled"), and here is every shard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import StoreError

if TYPE_CHECKING:
    from .store import Store

#: The MergeTree table on every shard; ``schema.TABLE`` (``laion``) is the Distributed table over them.
LOCAL_TABLE = "laion_local"
_DISTRIBUTED = re.compile(r"^Distributed\(\s*'?([^',)\s]+)'?")


@dataclass(frozen=True)
class Shard:
    """One shard of the cluster, as the server's ``system.clusters`` lists it."""

    number: int  # shard_num, from 1
    hosts: tuple[str, ...]  # host:port of each replica
    local: bool  # every replica is this server


@dataclass(frozen=True)
class Cluster:
    """A ClickHouse cluster from the server's ``remote_servers`` config."""

    name: str
    shards: tuple[Shard, ...]

    @property
    def here(self) -> bool:
        """Every shard is this server (then statements need no ``ON CLUSTER``)."""
        return all(s.local for s in self.shards)


def resolve(store: Store, asked: str | None) -> tuple[Cluster | None, bool]:
    """The store's cluster, and whether that is settled: ``asked`` checked against the server and
    the existing ``laion`` table, or the cluster an existing ``laion`` table was made on."""
    from .schema import TABLE

    rows = store.query(
        "SELECT engine, engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": store.database, "t": TABLE},
    ).to_pylist()
    made_on = None
    if rows and rows[0]["engine"] == "Distributed":
        found = _DISTRIBUTED.match(rows[0]["engine_full"])
        made_on = found.group(1) if found else None
    if rows and asked and made_on != asked:
        how = f"is spread over cluster {made_on}" if made_on else "keeps its rows in one table on this server"
        raise StoreError(f"store {store.location} {how}; --cluster {asked} needs another database "
                         "(e.g. http://HOST:8123/laion_cluster)")
    name = asked or made_on
    if name is None:
        return None, bool(rows)
    return Cluster(name, _shards(store, name)), True


def _shards(store: Store, name: str) -> tuple[Shard, ...]:
    rows = store.query(
        "SELECT shard_num AS shard, groupArray(concat(host_name, ':', toString(port))) AS hosts, "
        "min(is_local) AS local FROM system.clusters WHERE cluster = {c:String} GROUP BY shard_num ORDER BY shard_num",
        {"c": name},
    ).to_pylist()
    if not rows:
        known = store.query("SELECT DISTINCT cluster FROM system.clusters ORDER BY cluster").column("cluster").to_pylist()
        listed = f"its remote_servers config lists {', '.join(known)}" if known else "it has no remote_servers config"
        raise StoreError(f"{store.target}: the server has no cluster {name!r} ({listed})")
    return tuple(Shard(int(r["shard"]), tuple(r["hosts"]), bool(r["local"])) for r in rows)


def on_cluster(store: Store) -> str:
    """`` ON CLUSTER `name` `` for statements that change the shards' tables ('' when here is every shard)."""
    cluster = store.cluster
    return "" if cluster is None or cluster.here else f" ON CLUSTER `{cluster.name}`"


def everywhere(store: Store, table: str) -> str:
    """``table`` (e.g. ``system.parts``) as read from every shard, one replica each; ``shardNum()`` tells which."""
    cluster = store.cluster
    return table if cluster is None else f"cluster('{cluster.name}', {table})"


def distributed_engine(store: Store, local: str) -> str:
    """The ``Distributed`` engine over table ``local`` on every shard, sharded by LAION part."""
    return f"Distributed('{store.cluster.name}', '{store.database}', '{local}', part)"


def shard_loads(store: Store, parts: list[dict]) -> dict[int, int]:
    """Rows on each shard of the cluster (every shard listed), from ``schema.data_parts`` rows."""
    loads = {s.number: 0 for s in store.cluster.shards}
    for p in parts:
        loads[int(p["shard"])] = loads.get(int(p["shard"]), 0) + int(p["rows"])
    return loads


def placement(parts: list[dict]) -> dict[int, int]:
    """The shard of every stored LAION part, from ``schema.data_parts`` rows."""
    return {int(p["partition"]): int(p["shard"]) for p in parts}


def choose_shard(loads: dict[int, int]) -> int:
    """The shard a new part goes to: the one with the fewest rows (the lowest number on a tie)."""
    return min(loads, key=lambda shard: (loads[shard], shard))


def describe(store: Store, parts: list[dict]) -> dict | None:
    """The cluster's name and each shard's hosts and rows, from ``schema.data_parts`` rows (None without one)."""
    if store.cluster is None:
        return None
    loads = shard_loads(store, parts)
    return {"name": store.cluster.name, "shards": [
        {"shard": s.number, "hosts": list(s.hosts), "rows": loads[s.number]} for s in store.cluster.shards]}

"""A store spread over a ClickHouse cluster: a Distributed ``laion`` over ``laion_local`` on every shard.

Here: a one-shard cluster inside chDB (its only replica is this process, so the real
Distributed engine path runs with no network). Against a real cluster when
``LAIONSEARCH_TEST_CLUSTER`` names one (``http://host:8123?cluster=NAME``): the same job,
plus the parts spread over its shards.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from laionsearch import Store, SynthSpec, synth_parts
from laionsearch.cluster import Cluster, Shard, choose_shard, placement, shard_loads

from .conftest import SMALL_ROWS, run_cli, write_manifest

ROWS = 1500
TEST_CLUSTER = os.environ.get("LAIONSEARCH_TEST_CLUSTER")
#: chDB's server config: a cluster whose one replica is this process (is_local = 1).
ONE_SHARD = """<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers><laion_test><shard><replica><host>localhost</host><port>9000</port></replica></shard></laion_test>
  </remote_servers>
</clickhouse>
"""


def one_shard_db(folder: Path, cluster: bool = True) -> str:
    """A chdb:// URL with the one-shard cluster's config (and ?cluster=, unless ``cluster`` is False)."""
    config = folder / "cluster.xml"
    config.write_text(ONE_SHARD)
    return f"chdb://{folder}/store?config-file={config}" + ("&cluster=laion_test" if cluster else "")


@pytest.fixture(scope="module")
def cluster_parts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cluster-parts")
    synth_parts(folder, [0, 1, 2], SynthSpec(rows=ROWS, dim=64, seed=11))
    return folder


@pytest.fixture(params=["one-shard", "real"])
def cluster_db(request, tmp_path) -> str:
    """The --db of an empty store on a cluster: the one-shard chDB cluster, or the real one."""
    if request.param == "one-shard":
        return one_shard_db(tmp_path)
    if not TEST_CLUSTER:
        pytest.skip("LAIONSEARCH_TEST_CLUSTER is not set: no multi-shard ClickHouse cluster to test on (docs/scale.md)")
    base, _, query = TEST_CLUSTER.partition("?")
    database = f"t_{uuid.uuid4().hex[:12]}"
    Store(TEST_CLUSTER, database=database)  # CREATE DATABASE … ON CLUSTER
    return f"{base.rstrip('/')}/{database}?{query}"


def cli(db: str, *args: str) -> str:
    return run_cli(*args, db=db).stdout


def rows_of(db: str, *args: str) -> list[dict]:
    return json.loads(cli(db, *args, "--format", "json"))


@pytest.mark.slow
def test_the_whole_job_runs_on_a_cluster(cluster_db, cluster_parts, tmp_path):
    cli(cluster_db, "ingest", str(cluster_parts))
    tables = {r["name"]: r["engine"] for r in rows_of(
        cluster_db, "sql", "SELECT name, engine FROM system.tables WHERE database = currentDatabase()")}
    assert tables["laion"] == "Distributed" and tables["laion_local"] == "MergeTree"
    info = rows_of(cluster_db, "info")
    assert sorted(r["part"] for r in info) == [0, 1, 2] and all(r["rows"] == ROWS for r in info)
    shards = {r["part"]: r["shard"] for r in info}
    (count,) = rows_of(cluster_db, "sql", "SELECT uniqExact(shard_num) AS n FROM system.clusters WHERE cluster = "
                       f"'{cluster_db.rpartition('cluster=')[2]}'")
    shard_count = count["n"]
    # Balanced: every shard gets a part before any gets a second.
    assert len(set(shards.values())) == min(3, shard_count)

    view = json.loads(cli(cluster_db, "serve", "--get", "/api/store"))
    assert view["cluster"]["name"] == cluster_db.rpartition("cluster=")[2]
    assert sum(s["rows"] for s in view["cluster"]["shards"]) == 3 * ROWS
    assert {p["part"]: p["shard"] for p in view["parts"]} == shards

    # Re-runs find each part where it is: skipped, or (forced) replaced on the same shard.
    again = run_cli("ingest", str(cluster_parts), "--parts", "1", "--force", db=cluster_db)
    assert f"on shard {shards[1]}" in again.stderr
    assert rows_of(cluster_db, "info") == info
    assert "already in the store" in run_cli("ingest", str(cluster_parts), db=cluster_db).stderr

    # The index is built on every shard, and searches use it inside the shard reads.
    cli(cluster_db, "index", "create", "--m", "16", "--ef-construction", "64")
    (status,) = rows_of(cluster_db, "index", "status")
    assert (status["state"], status["parts_indexed"], status["parts_total"]) == ("built", 3, 3)
    assert status["bytes_in_memory"] > ROWS * 3 * 64 * 2
    probe = json.dumps(np.random.default_rng(3).standard_normal(64).round(4).tolist())
    plan = "\n".join(r["explain"] for r in rows_of(
        cluster_db, "sql", f"EXPLAIN indexes = 1 SELECT id FROM laion ORDER BY cosineDistance(image_embedding, "
        f"{probe}) LIMIT 10"))
    assert "laion_local" in plan and "vector_similarity" in plan

    hits = rows_of(cluster_db, "search", "--like-id", "200000042", "-k", "5")
    assert hits[0]["id"] == 200000042 and len(hits) == 5
    # A filter keeping ~1/3 of the rows still returns k rows, all matching.
    unsure = rows_of(cluster_db, "search", "--like-id", "42", "-k", "30", "--nsfw", "UNSURE")
    assert len(unsure) == 30 and {r["NSFW"] for r in unsure} == {"UNSURE"}

    evals = rows_of(cluster_db, "eval", "--queries", "20", "--ef", "64")
    for row in evals:
        per_shard = {k: v for k, v in row.items() if k.startswith("recall_shard_")}
        assert set(per_shard) == {f"recall_shard_{s}" for s in set(shards.values())}
    assert evals[-1]["setting"] == "exact" and evals[-1]["recall"] == 1.0

    assert run_cli("check", str(cluster_parts), db=cluster_db).returncode == 0
    cli(cluster_db, "index", "drop")
    assert rows_of(cluster_db, "index", "status") == []


@pytest.mark.slow
def test_a_cluster_store_answers_as_a_plain_store_does(cluster_parts, tmp_path):
    """The same rows give the same exact and filtered answers through the Distributed table."""
    plain, spread = tmp_path / "plain", one_shard_db(tmp_path)
    queries = [("--like-id", "100000007"), ("--like-id", "5", "--min-similarity", "0.3", "--nsfw", "UNLIKELY")]
    answers = []
    for db in (plain, spread):
        run_cli("ingest", str(cluster_parts), db=db)
        answers.append([[(r["id"], round(r["distance"], 5)) for r in rows_of(db, "search", *q, "-k", "15", "--exact")]
                        for q in queries])
    assert answers[0] == answers[1] and all(len(a) == 15 for a in answers[0])


@pytest.mark.slow
def test_cluster_mistakes_are_one_line(cluster_parts, tmp_path):
    db = one_shard_db(tmp_path, cluster=False)
    unknown = run_cli("--cluster", "nosuch", "info", db=db, check=False)
    assert unknown.returncode == 1 and "no cluster 'nosuch'" in unknown.stderr and "laion_test" in unknown.stderr
    embedded = run_cli("--cluster", "laion_test", "info", db=tmp_path / "folder", check=False)
    assert embedded.returncode == 1 and "a cluster is a ClickHouse server's" in embedded.stderr
    run_cli("ingest", str(cluster_parts), "--parts", "0", db=db)  # a plain store on that server
    plain = run_cli("--cluster", "laion_test", "ingest", str(cluster_parts), db=db, check=False)
    assert plain.returncode == 1 and "keeps its rows in one table" in plain.stderr
    for proc in (unknown, embedded, plain):
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.slow
def test_get_places_each_downloaded_part_on_a_shard(server, manifest, tmp_path):
    db = one_shard_db(tmp_path)
    write_manifest(manifest, tmp_path / "m.tsv")
    out = run_cli("get", "--parts", "0-1", "--dest", str(tmp_path / "raw"), "--base-url", server.url,
                  "--manifest", str(tmp_path / "m.tsv"), db=db).stderr
    assert "on shard 1" in out
    assert rows_of(db, "info") == [{"part": 0, "rows": SMALL_ROWS, "shard": 1}, {"part": 1, "rows": SMALL_ROWS, "shard": 1}]


def _fake_store(*shards: int):
    return SimpleNamespace(cluster=Cluster("c", tuple(Shard(n, (f"h{n}:9000",), False) for n in shards)))


def test_new_parts_go_to_the_emptiest_shard_and_stored_ones_stay():
    parts = [{"shard": 2, "partition": "7", "rows": 900}, {"shard": 3, "partition": "8", "rows": 100}]
    loads = shard_loads(_fake_store(1, 2, 3), parts)
    assert loads == {1: 0, 2: 900, 3: 100}
    assert choose_shard(loads) == 1
    assert choose_shard({1: 50, 2: 50}) == 1 and choose_shard({1: 51, 2: 50}) == 2
    assert placement(parts) == {7: 2, 8: 3}


def test_placement_spreads_a_release_evenly():
    from laionsearch.ops.ingest import _Placement

    placed = _Placement(loads={1: 0, 2: 0, 3: 0, 4: 1000}, where={5: 4})
    for number, rows in enumerate([1000] * 10):
        placed.shard_of(SimpleNamespace(number=number, rows=rows))
    assert placed.where[5] == 4  # a stored part stays where it is
    counts = sorted(list(placed.where.values()).count(s) for s in (1, 2, 3, 4))
    assert counts[-1] - counts[0] <= 1


ON_CLUSTER_RUN = """
import json, sys
from laionsearch import Store, ingest
from laionsearch.cluster import Cluster
from laionsearch.ops.index import create_index, drop_index

Cluster.here = property(lambda self: False)  # as if the shards were other servers
store = Store(sys.argv[1])
statements, here_only, run = [], [], store.engine.query

def query(sql, params):
    if sql.split()[0] in ("CREATE", "ALTER", "DROP", "OPTIMIZE", "SYSTEM", "KILL") and " ON CLUSTER " not in sql:
        here_only.append(sql)
    if " ON CLUSTER " in sql:
        statements.append(sql)
        run("SELECT formatQuery({q:String}) AS q", {"q": sql})  # ClickHouse's parser takes it, or this raises
        sql = sql.replace(" ON CLUSTER `laion_test`", "")  # chDB runs no distributed DDL: run it on the one shard
    return run(sql, params)

store.engine.query = query
ingest(store, sys.argv[2], [0, 1])
create_index(store, "image", m=8, ef_construction=16)
ingest(store, sys.argv[2], [1, 2], force=True)
drop_index(store, "image")
print(json.dumps([statements, here_only]))
"""


@pytest.mark.slow
def test_statements_for_other_servers_run_on_every_shard(cluster_parts, tmp_path):
    """With shards on other servers, every statement that changes tables says ON CLUSTER (and parses)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", ON_CLUSTER_RUN, one_shard_db(tmp_path), str(cluster_parts)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    statements, here_only = json.loads(proc.stdout)
    # Only the stages' Distributed tables, through which rows reach one shard, live on this server alone.
    assert here_only and all("laion_stage_" in s and "_all" in s.split("(")[0] for s in here_only), here_only
    kinds = {" ".join(s.replace(" IF NOT EXISTS", "").replace(" IF EXISTS", "").split()[:2]) for s in statements}
    assert {"CREATE TABLE", "DROP TABLE", "ALTER TABLE", "SYSTEM STOP", "SYSTEM START", "OPTIMIZE TABLE"} <= kinds
    swaps = [s for s in statements if "REPLACE PARTITION" in s]
    # The swap runs on every shard: the one with the rows takes the part, the others drop their copy.
    assert len(swaps) == 4 and all("allow_replace_partition_from_empty_source = 1" in s for s in swaps)
    assert any("ADD INDEX image_index" in s for s in statements)
    assert any("DROP INDEX image_index" in s for s in statements)

"""The command line as a user runs it: separate processes, real store, real files."""

import json
import re
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from laionsearch import row_id

from .conftest import cli_json, copy_parts, run_cli

GUIDE_QUERY = (
    "SELECT url, caption FROM laion "
    "ORDER BY cosineDistance(image_embedding, {target:Array(Float32)}) LIMIT 10"
)


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    """synth + ingest through the CLI, once for this module."""
    root = tmp_path_factory.mktemp("cli")
    run_cli("synth", str(root / "parts"), "--parts", "0-1", "--rows", "1500", "--seed", "3")
    proc = run_cli("ingest", str(root / "parts"), db=root / "db")
    assert "ingested 2 part(s), 3,000 rows" in proc.stderr and proc.stdout == ""
    return root


def test_search_like_id_json(cli_store):
    rows = cli_json("search", "--like-id", str(row_id(1, 20)), "-k", "4", db=cli_store / "db")
    assert [set(r) for r in rows] == [{"id", "url", "caption", "NSFW", "similarity", "distance"}] * 4
    assert rows[0]["id"] == row_id(1, 20)
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)


def test_search_vector_file_with_filters_and_csv(cli_store):
    vec = np.load(cli_store / "parts" / "img_emb" / "img_emb_0.npy")[30].astype(np.float32)
    np.save(cli_store / "q.npy", vec)
    rows = cli_json("search", "--vector-file", str(cli_store / "q.npy"), "--nsfw", "UNLIKELY",
                    "--min-similarity", "0.3", db=cli_store / "db")
    assert len(rows) == 10
    assert all(r["NSFW"] == "UNLIKELY" and r["similarity"] >= 0.3 for r in rows)
    csv_out = run_cli("search", "--vector-file", str(cli_store / "q.npy"), "-k", "2", "--format", "csv",
                      db=cli_store / "db").stdout
    assert csv_out.splitlines()[0] == "id,url,caption,NSFW,similarity,distance"
    assert len(csv_out.splitlines()) == 3


def test_guide_sql_runs_verbatim_with_a_vector_parameter(cli_store):
    vec = np.load(cli_store / "parts" / "img_emb" / "img_emb_1.npy")[7].astype(np.float32)
    (cli_store / "vector.json").write_text(json.dumps(vec.tolist()))
    rows = cli_json("sql", GUIDE_QUERY, "--param", f"target=@{cli_store / 'vector.json'}", db=cli_store / "db")
    assert len(rows) == 10
    assert rows[0]["url"].endswith("/laion/1/7.jpg")
    counted = cli_json("sql", "SELECT count() AS n FROM laion WHERE caption = {c:String}",
                       "--param", "c=emoji 🐱🚀🌈", db=cli_store / "db")
    expected = sum(
        pq.read_table(cli_store / "parts" / "metadata" / f"metadata_{n}.parquet").column("caption").to_pylist().count(
            "emoji 🐱🚀🌈"
        )
        for n in (0, 1)
    )
    assert expected >= 2 and counted == [{"n": expected}]


def test_info_lists_parts(cli_store):
    assert cli_json("info", db=cli_store / "db") == [{"part": 0, "rows": 1500}, {"part": 1, "rows": 1500}]


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "--like-id", "123456789"], "no row with id 123456789"),
        (["search"], "give a query"),
        (["search", "--not-id", "5"], "give a query"),
        (["search", "--like-id", "1", "--column", "audio"], "unknown column 'audio'"),
        (["search", "--like-id", "1", "--format", "xml"], "unknown format 'xml'"),
        (["sql", "SELECT * FROM nope"], "nope"),
        (["sql", "SELECT 1", "--param", "oops"], "bad --param"),
        (["ingest", "/definitely/not/here"], "not a folder"),
        (["ingest", "/tmp", "--parts", "9-1"], "bad part range"),
    ],
)
def test_bad_input_gives_one_line_and_exit_1(cli_store, args, message):
    proc = run_cli(*args, db=cli_store / "db", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


@pytest.mark.parametrize("args", [
    ("info",), ("search", "--like-id", "7", "-k", "3"), ("index", "status"), ("check",),
    ("sql", "SELECT count() AS n FROM laion"),  # eval: test_index_commands (it needs an index)
])
def test_json_output_is_exactly_one_document(cli_store, args):
    proc = run_cli(*args, "--format", "json", db=cli_store / "db")
    json.loads(proc.stdout)  # the whole of stdout: nothing human is mixed in (that goes to stderr)


def test_help_explains_every_command_with_an_example():
    out = run_cli("--help").stdout
    for command in ("synth", "ingest", "search", "sql", "info", "demo"):
        assert command in out
        sub = run_cli(command, "--help").stdout
        assert sub.startswith(f"Usage: laionsearch {command}") and "Example" in sub


@pytest.mark.slow
def test_demo_runs_from_scratch(tmp_path):
    from laionsearch.ops.demo import GUIDE_SQL

    proc = run_cli("--db", str(tmp_path / "db"), "demo", "--dest", str(tmp_path / "parts"), "--rows", "3000")
    out = proc.stdout
    assert "ingested 2 part(s), 6,000 rows" in out
    assert "vector_similarity('hnsw', 'cosineDistance', 512, 'bf16', 16, 64): 2 of 2 data parts" in out
    assert re.search(r"ef=64 +│ +0\.\d{3} ", out) and re.search(r"exact +│ +1\.000 ", out)  # recall per ef
    assert "plan: exact" in out and "plan: ann" in out and "of the exact top 5" in out
    assert re.search(r"exact search, median of 3: [\d.]+ ms reading the vectors from the table, [\d.]+ ms with them "
                     r"held in memory \([\d.]+ MB; serve --hold-vectors\), the same rows", " ".join(out.split()))
    assert GUIDE_SQL in out and "an oil painting of a cat #12" in out
    assert f"--db {tmp_path / 'db'} serve --port 1234" in out and "get --parts 0-9" in out
    again = run_cli("--db", str(tmp_path / "db"), "demo", "--dest", str(tmp_path / "parts"), "--rows", "3000").stdout
    assert "2 part(s) already in the store" in again and "already built" in again


def test_store_in_use_by_another_process_is_one_clear_line(cli_store):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, laionsearch; laionsearch.Store(sys.argv[1]); print('open', flush=True); "
         "sys.stdin.read()", str(cli_store / "db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        proc = run_cli("info", db=cli_store / "db", check=False)
    finally:
        holder.communicate("", timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: store {cli_store / 'db'} is in use by another process; one process at a time can open it "
        "(to share a store between processes, load it into a ClickHouse server and use --db http://HOST:8123)"
    ]


def test_bad_part_from_the_cli(parts_dir, tmp_path):
    folder = copy_parts(parts_dir, tmp_path / "parts")
    npy = folder / "img_emb" / "img_emb_1.npy"
    npy.write_bytes(npy.read_bytes()[:-10])
    proc = run_cli("ingest", str(folder), db=tmp_path / "db", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "img_emb_1.npy: truncated" in proc.stderr
    assert cli_json("info", db=tmp_path / "db") == []


def test_index_commands(parts_dir, tmp_path):
    db = tmp_path / "db"
    run_cli("ingest", str(parts_dir), db=db)
    assert cli_json("index", "status", db=db) == []
    bad = run_cli("index", "create", "--column", "audio", db=db, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: unknown column 'audio'")
    bad = run_cli("index", "create", "--m", "0", db=db, check=False)
    assert bad.returncode == 1 and "--m must be at least 2" in bad.stderr
    small = run_cli("--index-cache", "1MB", "index", "create", "--m", "8", "--ef-construction", "32", db=db,
                    check=False)
    assert small.returncode == 1 and "image_index will take ~4.4 MB in memory; the index cache holds 1.0 MB" in small.stderr
    assert "--over-cache" in small.stderr and cli_json("index", "status", db=db) == []
    proc = run_cli("index", "create", "--column", "both", "--m", "8", "--ef-construction", "32", db=db)
    assert "built image_index in" in proc.stderr and "built text_index in" in proc.stderr and proc.stdout == ""
    assert re.search(r"text_index will take ~4\.4 MB in memory \(\d+\.\d MB with the other index\)", proc.stderr)
    proc = run_cli("index", "status", "--format", "json", db=db)
    assert "vector index cache: 0.0 MB loaded of 5.4 GB" in proc.stderr  # a new process: nothing loaded yet
    status = json.loads(proc.stdout)
    assert [(s["name"], s["parts_indexed"] == s["parts_total"]) for s in status] == [
        ("image_index", True), ("text_index", True)]
    proc = run_cli("search", "--like-id", "7", "-k", "3", "--explain", "--format", "json", db=db)
    assert "plan: ann" in proc.stderr and json.loads(proc.stdout)[0]["id"] == 7
    proc = run_cli("search", "--like-id", "7", "-k", "3", "--exact", "--explain", "--format", "json", db=db)
    assert "plan: exact" in proc.stderr
    rows = cli_json("eval", "--queries", "10", "--ef", "16,64", "--plot", str(tmp_path / "recall.html"), db=db)
    assert [r["setting"] for r in rows] == ["ef=16", "ef=64", "exact"] and rows[-1]["recall"] == 1.0
    page = (tmp_path / "recall.html").read_text()
    assert page.count("<circle") == 3 and "<title>ef=64</title>" in page and "<title>exact</title>" in page
    bad = run_cli("eval", "--plot", str(tmp_path / "recall.gif"), db=db, check=False)
    assert bad.returncode == 1 and "write .png, .html or .svg" in bad.stderr
    proc = run_cli("index", "drop", "--column", "text", db=db)
    assert "dropped text_index" in proc.stderr and proc.stdout == ""
    again = run_cli("index", "drop", "--column", "text", db=db, check=False)
    assert again.returncode == 1 and "there is no index text_index" in again.stderr


def test_unreachable_server_is_one_line_without_the_password(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli("--db", f"http://alice:s3cret@127.0.0.1:{port}/laion", "info", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect to http://alice@127.0.0.1:")
    assert "connection refused" in lines[0] and "s3cret" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("db, message", [
    ("ftp://x/y", "unknown scheme"),
    ("http://host:0x/", "port"),
])
def test_bad_db_urls_exit_1_with_one_line(db, message):
    proc = run_cli("--db", db, "info", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr


def test_whole_job_through_the_server_code_path(cli_store, parts_dir):
    """--db chdb:///path runs every command through clickhouse-connect, as against a server."""
    db = f"chdb://{cli_store / 'via-driver'}"
    run_cli("--db", db, "ingest", str(parts_dir))
    run_cli("--db", db, "index", "create", "--m", "8", "--ef-construction", "32")
    status = json.loads(run_cli("--db", db, "index", "status", "--format", "json").stdout)
    assert [(s["name"], s["parts_indexed"], s["parts_total"]) for s in status] == [("image_index", 2, 2)]
    hits = json.loads(run_cli("--db", db, "search", "--like-id", "100000005", "-k", "3", "--explain",
                              "--format", "json").stdout)
    assert hits[0]["id"] == 100000005 and len(hits) == 3
    rows = json.loads(run_cli("--db", db, "sql", "SELECT count() AS n FROM laion", "--format", "json").stdout)
    assert rows == [{"n": 4000}]


@pytest.mark.slow
def test_a_part_the_engine_sets_aside_is_reported_and_repaired(parts_dir, tmp_path):
    import glob
    import os

    db = tmp_path / "db"
    run_cli("ingest", str(parts_dir), db=db)
    assert "no problems found" in run_cli("check", str(parts_dir), db=db).stderr
    (folder,) = glob.glob(str(db / "store" / "*" / "*" / "1_*"))  # part 1's data part
    data = os.path.join(folder, "data.bin")
    os.truncate(data, os.path.getsize(data) - 1000)

    info = run_cli("info", "--format", "json", db=db)
    assert json.loads(info.stdout) == [{"part": 0, "rows": 2000}]
    assert "WARNING: the engine set aside 1 damaged data part(s) (broken-on-start_1_" in info.stderr
    checked = run_cli("check", str(parts_dir), "--format", "json", db=db, check=False)
    assert checked.returncode == 1
    problems = json.loads(checked.stdout)
    assert {p["part"] for p in problems} == {1} and len(problems) == 2  # set aside; and missing against the release
    assert all(p["fix"] == "re-ingest it: laionsearch ingest DIR --parts 1 --force" for p in problems)
    assert "2 problem(s) found" in checked.stderr

    run_cli("ingest", str(parts_dir), "--parts", "1", "--force", db=db)
    assert json.loads(run_cli("info", "--format", "json", db=db).stdout) == [{"part": 0, "rows": 2000},
                                                                             {"part": 1, "rows": 2000}]
    assert "no problems found" in run_cli("check", str(parts_dir), db=db).stderr  # the damaged copy is gone too


def test_a_store_this_user_cannot_write_is_one_line():
    """As another user (nobody) on a store root made: the engine's own errors used to come first."""
    import os
    import shutil
    import tempfile

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run as another user")
    as_nobody = [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", sys.executable]
    if subprocess.run(as_nobody + ["-c", "import laionsearch"], capture_output=True).returncode != 0:
        pytest.skip("user nobody cannot read this checkout or its Python")
    folder = tempfile.mkdtemp(prefix="ls-root-store-")
    try:
        os.chmod(folder, 0o755)
        proc = subprocess.run(as_nobody + ["-m", "laionsearch", "--db", folder, "info"], capture_output=True, text=True,
                              cwd="/", timeout=120)
    finally:
        shutil.rmtree(folder)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"error: store {folder}: this user (nobody) cannot write its folder; open it "
                                        "as the user who created it, or give --db a folder of your own"]


def test_db_naming_a_file_or_huge_parts_is_one_line(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("not a store")
    proc = run_cli("--db", str(afile), "info", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: store {afile} is a file, not a folder; give --db a folder "
                                                 "(it is created if missing)"]
    proc = run_cli("download", "--parts", "0-1000000000000", "--dest", str(tmp_path / "dl"), check=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "99,999 at most" in proc.stderr

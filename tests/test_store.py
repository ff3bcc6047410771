"""The store and its engines: parameters, errors, parallel statements, what --db accepts."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from laionsearch import ArgumentError, QueryError, Store, StoreError, ingest, search, search_like
from laionsearch.engine import parse_target
from laionsearch.engine.params import to_param, vector_hex, vector_sql
from laionsearch.schema import stored_parts

from .conftest import SMALL_ROWS


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_string_parameters_arrive_unchanged(backend, text):
    store = Store(backend)
    got = store.query("SELECT {s:String} AS s, {a:Array(String)} AS a", {"s": text, "a": [text, "x"]}).to_pylist()
    assert got == [{"s": text, "a": [text, "x"]}]


def test_float32_vectors_arrive_bit_exact(backend):
    vec = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    store = Store(backend)
    got = store.query("SELECT {v:Array(Float32)} AS v", {"v": vec}).column("v")[0].as_py()
    assert np.array_equal(np.array(got, dtype=np.float32), vec)
    hexed = store.query(f"SELECT {vector_sql('v')} AS v", {"v": vector_hex(vec)}).column("v")[0].as_py()
    assert np.array_equal(np.array(hexed, dtype=np.float32), vec)


def test_engine_errors_become_one_line_query_errors(store):
    with pytest.raises(QueryError) as err:
        store.query("SELECT * FROM no_such_table")
    assert "no_such_table" in str(err.value) and "\n" not in str(err.value)


def test_second_store_path_in_one_process_is_refused(store, tmp_path):
    with pytest.raises(StoreError, match="one store path per process"):
        Store(tmp_path / "other")
    with pytest.raises(StoreError, match="one store path per process"):
        Store(f"chdb://{tmp_path / 'other'}")


def test_bad_database_name(store_path):
    with pytest.raises(StoreError, match="bad database name"):
        Store(store_path, database="x; DROP")


def test_to_param_renders_values():
    assert to_param([1, 2.5, "a'b"]) == "[1,2.5,'a\\'b']"
    assert to_param("tab\there") == "tab\\there"
    assert to_param(3) == "3"


def test_statements_from_threads_overlap(backend):
    """Four threads each run a 0.4 s statement: with a pool of connections they run at the same time."""
    store = Store(backend)
    spans = []

    def sleeper(_):
        started = time.monotonic()
        store.query("SELECT sleep(0.4) AS s")
        spans.append((started, time.monotonic()))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(sleeper, range(4)))
    latest_start = max(s for s, _ in spans)
    earliest_end = min(e for _, e in spans)
    assert latest_start < earliest_end, "no two statements were running at the same time"


def test_searches_stay_correct_while_a_part_is_ingested(store, parts_dir):
    """Searches in other threads see part 0 throughout, and part 1 either whole or not at all."""
    ingest(store, parts_dir, [0])
    expected = search_like(store, 12, k=5).column("id").to_pylist()
    stop, seen, errors = threading.Event(), [], []

    def searcher():
        while not stop.is_set():
            try:
                assert search_like(store, 12, k=5).column("id")[0].as_py() == 12
                seen.append(set(stored_parts(store).values()) <= {SMALL_ROWS})
            except Exception as exc:  # reported by the main thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        ingest(store, parts_dir, [1])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert seen and all(seen)
    assert stored_parts(store) == {0: SMALL_ROWS, 1: SMALL_ROWS}
    ids = search(store, store.query(f"SELECT image_embedding AS v FROM {store.table('laion')} WHERE id = 12")
                 .column("v")[0].as_py(), k=5).column("id").to_pylist()
    assert ids[0] == 12 and len(ids) == 5 and expected[0] == 12


@pytest.mark.parametrize("db, kind, shown", [
    ("./some/store", "embedded", None),
    ("http://localhost:8123", "server", "http://localhost:8123/"),
    ("https://alice:s3cret@ch.example.org:8443/laion", "server", "https://alice@ch.example.org:8443/laion"),
    ("chdb:///tmp/x", "server", "chdb:///tmp/x"),
])
def test_db_names_a_path_or_a_server(db, kind, shown):
    target = parse_target(db)
    assert target.kind == kind
    if shown:
        assert str(target) == shown and "s3cret" not in repr(target)
    else:
        assert target.path.is_absolute()


def test_a_url_names_a_cluster_and_chdb_urls_pass_options_on():
    target = parse_target("https://alice:s3cret@ch.example.org:8443/laion?cluster=laion_shards")
    assert (target.cluster, target.database, target.options) == ("laion_shards", "laion", ())
    assert str(target) == "https://alice@ch.example.org:8443/laion (cluster laion_shards)"
    local = parse_target("chdb:///tmp/x?config-file=/etc/ls.xml&cluster=c1")
    assert (local.cluster, local.options) == ("c1", (("config-file", "/etc/ls.xml"),))


def test_credentials_from_the_environment(monkeypatch):
    monkeypatch.setenv("CLICKHOUSE_USER", "bob")
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "hunter2")
    target = parse_target("http://db.internal:8123/laion")
    assert (target.user, target.password, target.database) == ("bob", "hunter2", "laion")
    assert "hunter2" not in str(target) + repr(target)


@pytest.mark.parametrize("db, message", [
    ("ftp://host/x", "unknown scheme"),
    ("http://", "no host"),
    ("http://host:99999/", "port"),
    ("http://host:8123/a/b", "one database"),
    ("http://u:pw@host/?shards=2", "unknown option 'shards'"),
    ("http://u:pw@host/?cluster=a;b", "bad cluster name"),
    ("http://u:pw@host/#top", "no #fragment"),
])
def test_bad_urls_are_one_line(db, message):
    with pytest.raises(ArgumentError, match=message) as err:
        parse_target(db)
    assert "\n" not in str(err.value) and ":pw@" not in str(err.value)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_is_one_clear_line_without_the_password():
    with pytest.raises(StoreError) as err:
        Store(f"http://alice:s3cret@127.0.0.1:{_closed_port()}/laion")
    message = str(err.value)
    assert "connection refused" in message and "127.0.0.1" in message
    assert "s3cret" not in message and "\n" not in message


def test_a_refused_login_is_one_clear_line(http_server_answering):
    url, _ = http_server_answering
    with pytest.raises(StoreError) as err:
        Store(url.replace("http://", "http://alice:s3cret@"))
    assert "AUTHENTICATION_FAILED" in str(err.value) and "s3cret" not in str(err.value)


@pytest.fixture
def http_server_answering():
    """A local HTTP server answering every request as ClickHouse does to a wrong password."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = (b"Code: 516. DB::Exception: alice: Authentication failed: password is incorrect, or there is no user "
            b"with such name. (AUTHENTICATION_FAILED) (version 26.9.2.1)\n")

    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self):
            self._refuse()

        def do_POST(self):
            self._refuse()

        def _refuse(self):
            self.send_response(403)
            self.send_header("X-ClickHouse-Exception-Code", "516")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/", srv
    srv.shutdown()
    srv.server_close()


class _FakeClient:
    """Stands in for a clickhouse-connect client of a given server version and databases."""

    def __init__(self, version, databases=("default",)):
        self.server_version, self.databases = version, databases

    def query_arrow(self, sql, parameters=None, **kw):
        import pyarrow as pa

        return pa.table({"n": [int(parameters["d"] in self.databases)]})

    def close(self):
        pass


@pytest.mark.parametrize("version, databases, message", [
    ("23.8.2.7", ("laion",), "ClickHouse 23.8.2.7 is too old; laionsearch needs 25.8 or newer"),
    ("26.9.2.1", ("default",), "the server has no database 'laion' (CREATE DATABASE laion first"),
])
def test_an_old_server_or_a_missing_database_is_one_line(monkeypatch, version, databases, message):
    from laionsearch.engine import server

    monkeypatch.setattr(server.ServerEngine, "_connect", lambda self: _FakeClient(version, databases))
    with pytest.raises(StoreError) as err:
        Store("http://alice:s3cret@db.example.org:8123/laion")
    assert message in str(err.value) and "s3cret" not in str(err.value) and "\n" not in str(err.value)

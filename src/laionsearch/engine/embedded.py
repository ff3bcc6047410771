"""The embedded backend: ClickHouse inside this process (chDB), on a local data path.

The only module that imports ``chdb``. chDB runs one data path per process
and one process per data path; within the process, separate connections to
the path run statements in parallel (one connection would serialise them), so
the engine keeps a pool of them.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import QueryError, StoreError, first_line
from .base import Engine, Pool
from .params import to_param
from .target import Target

_engines: dict[Path, "EmbeddedEngine"] = {}
_claimed: set[Path] = set()  # chDB's own rule: one data path per process
_engines_lock = threading.Lock()
_functions: dict[str, Callable[[str], str]] = {}  # chDB's Python functions are process-wide too
SHARE_HINT = "to share a store between processes, load it into a ClickHouse server and use --db http://HOST:8123"


def embedded_connections() -> int:
    """How many statements may run at once: the engine's HNSW graphs serve at most 2 x cores searches
    at a time and fail the rest ("Too many threads"), so the pool stops there."""
    return 2 * (os.cpu_count() or 1)


def open_embedded(target: Target, connections: int | None = None, index_cache: int | None = None) -> "EmbeddedEngine":
    """The process's engine for ``target.path`` (opened on first use, with ``index_cache`` bytes of vector index cache)."""
    path = target.path
    with _engines_lock:
        engine = _engines.get(path)
        if engine is None:
            claim_path(path)
            engine = _engines[path] = EmbeddedEngine(target, connections or embedded_connections(), index_cache)
        return engine


def claim_path(path: Path) -> None:
    """Check that this process may open chDB data path ``path``: the only one, not held by another process.

    Callers hold ``_engines_lock`` or call it once before opening the path."""
    if path in _claimed:
        return
    if _claimed:
        other = next(iter(_claimed))
        raise StoreError(f"this process already has store {other} open; chDB allows one store path per process")
    if path.exists() and not path.is_dir():
        raise StoreError(f"store {path} is a file, not a folder; give --db a folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create store folder {path}: {exc.strerror}") from None
    _check_writable(path)
    _check_not_locked(path)
    _claimed.add(path)


class EmbeddedEngine(Engine):
    """chDB on one data path, with a pool of connections."""

    kind = "embedded"
    facts_ttl = None

    def __init__(self, target: Target, connections: int, index_cache: int | None = None):
        super().__init__(target)
        import chdb  # heavy import, only when a store is opened

        self._chdb = chdb
        # chDB takes server settings in its connection string; the engine's default cache is 5 GiB.
        self._dsn = str(target.path) if index_cache is None else (
            f"file:{target.path}?vector_similarity_index_cache_size={int(index_cache)}")
        self._pool = Pool(self._connect, connections, first=self._connect())
        _open.add(self)

    def _connect(self):
        try:
            return self._chdb.connect(self._dsn)
        except Exception as exc:  # chDB raises RuntimeError with the engine's message
            raise StoreError(
                f"cannot open store {self.target.path}: {first_line(exc)} (is another process using it? {SHARE_HINT})"
            ) from None

    def query(self, sql: str, params: dict[str, Any]) -> pa.Table:
        text = {k: to_param(v) for k, v in params.items()}
        with self._pool.connection() as conn:
            try:
                result = conn.query(sql, "Arrow", params=text)
            except Exception as exc:  # ChdbError/RuntimeError with the engine's message
                raise QueryError(first_line(exc)) from None
        # Read the Arrow bytes here: chDB's own "ArrowTable" reader imports pandas (0.2 s per process start).
        if len(result) == 0:
            return pa.table({})
        return pa.ipc.open_file(result.get_memview().view()).read_all()

    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, Any] | None = None) -> None:
        columns = ", ".join(f"`{c}`" for c in data.column_names)
        extra = " SETTINGS " + ", ".join(f"{k} = {int(v):d}" for k, v in settings.items()) if settings else ""
        # chDB's Python() table function finds the Arrow table by its local variable name.
        self.query(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM Python(data){extra}", {})

    def register_function(self, name: str, function: Callable[[str], str]) -> bool:
        with _engines_lock:
            if name not in _functions:
                from chdb.sqltypes import STRING

                self._chdb.drop_function(name)
                self._chdb.create_function(name, lambda value: _functions[name](value), arg_types=[STRING],
                                           return_type=STRING)
            _functions[name] = function  # the latest store's function answers (chDB's are process-wide)
        return True

    def close(self) -> None:
        self._pool.close(lambda conn: conn.close())


_open: "weakref.WeakSet[EmbeddedEngine]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # Left to interpreter teardown, chDB's shutdown can crash the process (seen after queries
    # from web-server threads): close connections while Python is still whole.
    for engine in list(_open):
        engine.close()


def _check_writable(path: Path) -> None:
    """Fail clearly if this user cannot write the store (the engine would print its own errors, then a vague one)."""
    for item in (path, path / "status"):
        if item.exists() and not os.access(item, os.R_OK | os.W_OK):
            whose = "folder" if item == path else "files"
            raise StoreError(f"store {path}: this user ({_user()}) cannot write its {whose}; open it as the user who "
                             "created it, or give --db a folder of your own")


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _check_not_locked(path: Path) -> None:
    """Fail clearly if another process holds the store (the engine would print a stack of errors)."""
    status = path / "status"
    if not status.exists():
        return
    with open(status, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the engine's own lock on this file
        except OSError:
            raise StoreError(f"store {path} is in use by another process; one process at a time can open it "
                             f"({SHARE_HINT})") from None
        fcntl.flock(f, fcntl.LOCK_UN)

"""The ClickHouse engine behind laionsearch: an embedded chDB store on a local path.

All SQL goes through ``Store.query``; values from users travel as query
parameters (``{name:Type}`` in the SQL, Python values in ``params``), never
spliced into the text. chDB allows one data path per process, so sessions are
shared per path and a second path in the same process is refused clearly.
"""

from __future__ import annotations

import atexit
import fcntl
import math
import os
import re
import threading
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from . import sqlfunctions
from .errors import QueryError, StoreError, first_line

DEFAULT_PATH = "./laionsearch-data"

_sessions: dict[Path, Any] = {}
_lock = threading.Lock()
_query_lock = threading.RLock()
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_READ_ONLY = re.compile(r"^\s*(SELECT|WITH|EXPLAIN|SHOW|DESCRIBE|DESC)\b", re.IGNORECASE)


def default_path() -> str:
    """``$LAIONSEARCH_DB`` if set, else ``./laionsearch-data``."""
    return os.environ.get("LAIONSEARCH_DB") or DEFAULT_PATH


def _session(path: Path):
    with _lock:
        if path in _sessions:
            return _sessions[path]
        if _sessions:
            other = next(iter(_sessions))
            raise StoreError(f"this process already has store {other} open; chDB allows one store path per process")
        from chdb import session  # heavy import, only when a store is opened

        path.mkdir(parents=True, exist_ok=True)
        _check_not_locked(path)
        try:
            sess = session.Session(str(path))
        except Exception as exc:  # chDB raises RuntimeError with an engine message
            raise StoreError(
                f"cannot open store {path}: {first_line(exc)} (is another laionsearch process using it?)"
            ) from None
        _sessions[path] = sess
        return sess


@atexit.register
def _close_sessions() -> None:
    # Left to interpreter teardown, chDB's shutdown can crash the process (seen after queries
    # from web-server threads): close sessions while Python is still whole.
    with _lock:
        for sess in _sessions.values():
            try:
                sess.close()
            except Exception:  # closing at exit: nothing left to report to
                pass
        _sessions.clear()


def _check_not_locked(path: Path) -> None:
    """Fail clearly if another process holds the store (the engine would print a stack of errors)."""
    status = path / "status"
    if not status.exists():
        return
    with open(status, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the engine's own lock on this file
        except OSError:
            raise StoreError(f"store {path} is in use by another process; one process at a time can open it") from None
        fcntl.flock(f, fcntl.LOCK_UN)


class Store:
    """A laionsearch store: a ClickHouse database in an embedded chDB data path.

    ``database`` selects a ClickHouse database inside the path (default
    ``default``), so several independent stores can share one process.
    """

    def __init__(self, path: str | Path | None = None, database: str = "default"):
        if not _IDENTIFIER.match(database):
            raise StoreError(f"bad database name {database!r}: use letters, digits and _")
        self.path = Path(path if path is not None else default_path()).resolve()
        self.database = database
        self._session = _session(self.path)
        self._facts: dict[str, Any] = {}
        if database != "default":
            self.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        sqlfunctions.register(self)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, database={self.database!r})"

    def table(self, name: str) -> str:
        """The qualified name of table ``name`` in this store's database."""
        return f"{self.database}.{name}"

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run one statement and return its result as an Arrow table (empty for DDL)."""
        if not _READ_ONLY.match(sql):
            self._facts.clear()  # the statement may change what the cached facts describe
        sql, params = sqlfunctions.rewrite(sql, params or {})
        text_params = {k: to_param(v) for k, v in params.items()}
        try:
            with _query_lock:  # one statement at a time per process (the web server runs handlers in threads)
                return self._session.query(sql, "ArrowTable", params=text_params)
        except Exception as exc:  # chDB raises ChdbError/RuntimeError with the engine's message
            raise QueryError(first_line(exc)) from None

    def fact(self, key: str, compute: Callable[[], Any]) -> Any:
        """A fact about the store's tables (dimension, indexes), computed once until a statement
        that may change it runs. Safe because one process at a time can open a store."""
        if key not in self._facts:
            self._facts[key] = compute()
        return self._facts[key]

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """Run a statement whose result is not needed."""
        self.query(sql, params)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Append an Arrow table to ``table`` (columns matched by name)."""
        columns = ", ".join(f"`{c}`" for c in data.column_names)
        # chDB's Python() table function finds the Arrow table by its local variable name.
        self.execute(f"INSERT INTO {self.table(table)} ({columns}) SELECT {columns} FROM Python(data)")

    def tables(self) -> list[str]:
        """Names of the tables in this store's database."""
        rows = self.query(
            "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name", {"db": self.database}
        )
        return rows.column("name").to_pylist()

    def has_table(self, name: str) -> bool:
        return name in self.tables()


def to_param(value: Any) -> str:
    """Render a Python value as ClickHouse query-parameter text.

    Floats are written with 17 significant digits so float32 vectors arrive
    bit-exact; strings at top level use the escaped text format; lists become
    array literals.
    """
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim == 1:
        return "[" + ",".join(map(repr, value.astype(np.float64).tolist())) + "]"  # fast path: query vectors
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return _literal(value)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple, np.ndarray)):
        return to_param(value)
    raise QueryError(f"cannot pass a {type(value).__name__} as a query parameter")

"""The engine interface: what laionsearch needs from a ClickHouse, whichever runs it.

An ``Engine`` runs one SQL statement with query parameters and returns Arrow,
and appends Arrow tables to a table. It owns a pool of connections, so
statements from several threads run in parallel. Backends: ``embedded`` (chDB
in this process) and ``server`` (a ClickHouse server through clickhouse-connect).
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import pyarrow as pa

from .target import Target

C = TypeVar("C")
DEFAULT_CONNECTIONS = 8
#: Statements that return rows and change nothing (the rest may change tables, indexes, settings).
READ_STATEMENT = re.compile(r"^\s*(SELECT|WITH|EXPLAIN|SHOW|DESCRIBE|DESC|EXISTS)\b", re.IGNORECASE)


class Engine(ABC):
    """Runs SQL for a ``Store``. Values always travel as parameters, never in the SQL text."""

    #: ``embedded`` or ``server``.
    kind: str = ""
    #: Seconds that catalogue facts (dimension, indexes) may be reused; None: until this
    #: process changes them (nothing else can write to an embedded store).
    facts_ttl: float | None = None

    def __init__(self, target: Target):
        self.target = target

    @abstractmethod
    def query(self, sql: str, params: dict[str, Any]) -> pa.Table:
        """Run one statement; its result as an Arrow table (empty for statements without one)."""

    @abstractmethod
    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, Any] | None = None) -> None:
        """Append ``data`` to the qualified ``table`` (columns matched by name), with these query ``settings``."""

    def register_function(self, name: str, function: Callable[[str], str]) -> bool:
        """Make a Python ``String -> String`` function callable from this engine's SQL, if it can."""
        return False

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.target)!r})"


class Pool(Generic[C]):
    """Up to ``size`` connections made on demand by ``connect``, each used by one thread at a time.

    Fair: when all are busy, threads get the next free connection in the order they asked
    (it is handed to the longest waiter directly), so no request starves under load.
    """

    def __init__(self, connect: Callable[[], C], size: int = DEFAULT_CONNECTIONS, first: C | None = None):
        self._connect, self._size = connect, size
        self._idle: list[C] = []
        self._waiting: deque[list] = deque()  # [event, connection handed over]
        self._all: list[C] = []
        self._lock = threading.Lock()
        if first is not None:
            self._all.append(first)
            self._idle.append(first)

    @contextmanager
    def connection(self) -> Iterator[C]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._give(conn)

    def _take(self) -> C:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if len(self._all) < self._size:
                self._all.append(None)  # a place held while connecting, outside the lock
                waiter = None
            else:
                waiter = [threading.Event(), None]
                self._waiting.append(waiter)
        if waiter is not None:
            waiter[0].wait()
            return waiter[1]
        try:
            conn = self._connect()
        except BaseException:
            with self._lock:
                self._all.remove(None)
            raise
        with self._lock:
            self._all[self._all.index(None)] = conn
        return conn

    def _give(self, conn: C) -> None:
        with self._lock:
            if self._waiting:
                waiter = self._waiting.popleft()
                waiter[1] = conn
                waiter[0].set()
            else:
                self._idle.append(conn)

    def close(self, close_one: Callable[[C], None]) -> None:
        with self._lock:
            conns, self._all, self._idle = [c for c in self._all if c is not None], [], []
        for conn in conns:
            try:
                close_one(conn)
            except Exception:  # closing: nothing left to report to
                pass

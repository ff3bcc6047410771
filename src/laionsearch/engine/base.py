"""The engine interface: what laionsearch needs from a ClickHouse, whichever runs it.

An ``Engine`` runs one SQL statement with query parameters and returns Arrow,
and appends Arrow tables to a table. It owns a pool of connections, so
statements from several threads run in parallel. Backends: ``embedded`` (chDB
in this process) and ``server`` (a ClickHouse server through clickhouse-connect).
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import pyarrow as pa

from .target import Target

C = TypeVar("C")
DEFAULT_CONNECTIONS = 8


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
    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Append ``data`` to the qualified ``table`` (columns matched by name)."""

    def register_function(self, name: str, function: Callable[[str], str]) -> bool:
        """Make a Python ``String -> String`` function callable from this engine's SQL, if it can."""
        return False

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.target)!r})"


class Pool(Generic[C]):
    """Up to ``size`` connections made on demand by ``connect``, each used by one thread at a time."""

    def __init__(self, connect: Callable[[], C], size: int = DEFAULT_CONNECTIONS, first: C | None = None):
        self._connect, self._size = connect, size
        self._idle: queue.LifoQueue[C] = queue.LifoQueue()
        self._made, self._all = 0, []
        self._lock = threading.Lock()
        if first is not None:
            self._made, self._all = 1, [first]
            self._idle.put(first)

    @contextmanager
    def connection(self) -> Iterator[C]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._idle.put(conn)

    def _take(self) -> C:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = self._made < self._size
            if grow:
                self._made += 1
        if not grow:
            return self._idle.get()
        try:
            conn = self._connect()
        except BaseException:
            with self._lock:
                self._made -= 1
            raise
        with self._lock:
            self._all.append(conn)
        return conn

    def close(self, close_one: Callable[[C], None]) -> None:
        with self._lock:
            conns, self._all, self._made = self._all, [], 0
        while not self._idle.empty():
            self._idle.get_nowait()
        for conn in conns:
            try:
                close_one(conn)
            except Exception:  # closing: nothing left to report to
                pass

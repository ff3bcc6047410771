"""The server backend: a ClickHouse server through its official Python driver, clickhouse-connect.

The only module that imports ``clickhouse_connect``. Query parameters travel
as the driver binds them (``param_name`` on the HTTP request); Arrow goes both
ways (``query_arrow``, ``insert_arrow``). With ``chdb:///path`` the same code
runs on chDB's backend for the driver, which is how the tests cover this path
without a server.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from ..errors import QueryError, StoreError, first_line
from .base import DEFAULT_CONNECTIONS, READ_STATEMENT, Engine, Pool
from .params import plain
from .target import Target

#: vector_similarity indexes with the settings laionsearch uses, and {name:Type} parameters.
MIN_VERSION = (25, 8)
_ENGINE_MESSAGE = re.compile(r"(Code: \d+\. DB::Exception: .*)")
CONNECT_TIMEOUT = 10
QUERY_TIMEOUT = 3600  # index builds and part swaps are single long statements


class ServerEngine(Engine):
    """A ClickHouse server (or chDB through the driver's ``chdb`` backend), with a pool of clients."""

    kind = "server"
    #: Other clients may ingest or create indexes at any time; facts older than this are re-read.
    facts_ttl = 2.0

    def __init__(self, target: Target, connections: int = DEFAULT_CONNECTIONS):
        super().__init__(target)
        if target.scheme == "chdb":
            from .embedded import _engines_lock, claim_path

            with _engines_lock:
                claim_path(target.path)
        first = self._connect()
        version = tuple(int(p) for p in re.findall(r"\d+", str(first.server_version))[:2])
        if version < MIN_VERSION:
            raise StoreError(
                f"{target}: ClickHouse {first.server_version} is too old; laionsearch needs "
                f"{'.'.join(map(str, MIN_VERSION))} or newer (vector_similarity indexes, query parameters)"
            )
        if target.database and target.scheme != "chdb":
            exists = first.query_arrow("SELECT count() AS n FROM system.databases WHERE name = {d:String}",
                                       parameters={"d": target.database})
            if not exists.column("n")[0].as_py():
                raise StoreError(f"{target}: the server has no database {target.database!r} "
                                 f"(CREATE DATABASE {target.database} first, or leave it out of the URL)")
        self._pool = Pool(self._connect, connections, first=first)

    def _connect(self):
        import clickhouse_connect

        t = self.target
        try:
            if t.scheme == "chdb":
                return clickhouse_connect.get_client(dsn=f"chdb://{t.path}", chdb_options=dict(t.options) or None)
            return clickhouse_connect.get_client(
                host=t.host, port=t.port or (8443 if t.scheme == "https" else 8123), secure=t.scheme == "https",
                username=t.user or "default", password=t.password or "", database=t.database,
                connect_timeout=CONNECT_TIMEOUT, send_receive_timeout=QUERY_TIMEOUT,
                autogenerate_session_id=False, compress=False,
                # ON CLUSTER statements (index builds, part swaps) wait for every shard as long as any statement.
                settings={"distributed_ddl_task_timeout": QUERY_TIMEOUT} if t.cluster else None,
            )
        except Exception as exc:  # the driver's OperationalError/DatabaseError, or a socket error
            raise StoreError(f"cannot connect to {t}: {self._message(exc)}") from None

    def query(self, sql: str, params: dict[str, Any]) -> pa.Table:
        values = {k: plain(v) for k, v in params.items()}
        with self._pool.connection() as client:
            try:
                if READ_STATEMENT.match(sql):
                    return client.query_arrow(sql, parameters=values, use_strings=True)
                client.command(sql, parameters=values or None)
                return pa.table({})
            except Exception as exc:  # the driver wraps the server's message
                raise QueryError(self._message(exc)) from None

    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, Any] | None = None) -> None:
        with self._pool.connection() as client:
            try:
                client.insert_arrow(table, data, settings=settings)
            except Exception as exc:
                raise QueryError(self._message(exc)) from None

    def close(self) -> None:
        self._pool.close(lambda client: client.close())

    def _message(self, exc: BaseException) -> str:
        """The server's own message when there is one, else the first line; never the password."""
        text = str(exc)
        found = _ENGINE_MESSAGE.search(text)
        message = found.group(1).strip() if found else first_line(exc)
        if "Connection refused" in text or "Failed to establish" in text or "NewConnectionError" in text:
            message = "connection refused or host unreachable (is the server running, and is the port its HTTP port?)"
        elif "timed out" in text.lower() and not found:
            message = "timed out"
        password = self.target.password
        return message.replace(password, "***") if password else message

"""A laionsearch store: the ``laion`` tables in one ClickHouse database, on an engine.

All SQL goes through ``Store.query``; values from users travel as query
parameters (``{name:Type}`` in the SQL, Python values in ``params``), never
spliced into the text. The store owns its engine (embedded chDB or a server,
see ``engine``), its cached catalogue facts and its CLIP model choice.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .clip import sqlfunctions
from .engine import Engine, Target, open_engine, parse_target
from .engine.target import check_cluster_name
from .engine.base import READ_STATEMENT
from .errors import QueryError, StoreError
from .sizes import parse_size

if TYPE_CHECKING:
    from .cluster import Cluster

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BUSY = "Error: Too many threads"
_BUSY_RETRIES = 8


class Store:
    """The ``laion`` table and its indexes on an embedded chDB path or a ClickHouse server.

    ``db`` is a path or a URL (see ``engine.target``; default ``$LAIONSEARCH_DB``,
    else ``./laionsearch-data``). ``database`` selects a ClickHouse database
    (default: the URL's, else ``default``) and is created if missing, so several
    independent stores can share one engine. ``model`` is the CLIP model for
    text and image queries (default: ``$LAIONSEARCH_MODEL``, else the model the
    store recorded at ingest, else ViT-B/32).
    ``index_cache`` (bytes or e.g. ``"16GB"``; default ``$LAIONSEARCH_INDEX_CACHE``)
    sizes an embedded engine's vector index cache. ``cluster`` (default: the URL's
    ``?cluster=``, else ``$LAIONSEARCH_CLUSTER``) spreads the rows over a ClickHouse
    cluster of the server (see ``cluster``); a store made that way is found again without it.
    Safe to use from several threads: statements run in parallel.
    """

    def __init__(
        self,
        db: str | os.PathLike | None = None,
        database: str | None = None,
        *,
        model: str | None = None,
        engine: Engine | None = None,
        index_cache: int | str | None = None,
        cluster: str | None = None,
    ):
        self.target: Target = engine.target if engine is not None else parse_target(db)
        cluster = cluster or self.target.cluster or os.environ.get("LAIONSEARCH_CLUSTER") or None
        if cluster != self.target.cluster:
            if self.target.kind == "embedded":
                raise StoreError(f"--cluster {cluster}: a cluster is a ClickHouse server's; give --db "
                                 "http(s)://HOST:8123 (an embedded store is one folder of one machine)")
            self.target = dataclasses.replace(self.target, cluster=check_cluster_name(cluster))
        chosen = database or self.target.database or "default"
        if not _IDENTIFIER.match(chosen):
            raise StoreError(f"bad database name {chosen!r}: use letters, digits and _")
        if index_cache is None:
            index_cache = os.environ.get("LAIONSEARCH_INDEX_CACHE") or None
        self.engine = engine or open_engine(
            self.target, index_cache=parse_size(index_cache, "index cache") if index_cache is not None else None
        )
        self.database = chosen
        self.model = model
        self._facts: dict[str, tuple[float, Any]] = {}
        self._facts_lock = threading.Lock()
        self._cluster: Cluster | None = None
        self._cluster_settled = False
        if self.target.cluster:
            _ = self.cluster  # checked now: a cluster the server does not have is an error at once
        if database is not None and database != (self.target.database or "default"):
            from .cluster import on_cluster

            self.execute(f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster(self)}")
        sqlfunctions.register(self)

    @property
    def cluster(self) -> Cluster | None:
        """The ClickHouse cluster the rows are spread over, or None: the one asked for, checked
        against the server's clusters, else the one an existing ``laion`` table was made on."""
        if not self._cluster_settled:
            from . import cluster

            self._cluster, self._cluster_settled = cluster.resolve(self, self.target.cluster)
        return self._cluster

    @property
    def path(self) -> Path | None:
        """The embedded data path (None for a server)."""
        return self.target.path

    @property
    def location(self) -> str:
        """Where the store is, for messages (a path, or a URL without its password)."""
        where = str(self.target)
        return where if self.database in ("default", self.target.database) else f"{where} (database {self.database})"

    def __repr__(self) -> str:
        return f"Store({str(self.target)!r}, database={self.database!r})"

    def table(self, name: str) -> str:
        """The qualified name of table ``name`` in this store's database."""
        return f"{self.database}.{name}"

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run one statement and return its result as an Arrow table (empty for DDL).

        ``encode_text('…')``/``encode_image('…')`` calls on literals are encoded
        once with this store's model and passed as parameters (``clip.sqlfunctions``).
        """
        if not READ_STATEMENT.match(sql):
            self.forget_facts()  # the statement may change what the cached facts describe
        sql, params = sqlfunctions.rewrite(sql, params or {}, self.encoder)
        for attempt in range(_BUSY_RETRIES):
            try:
                return self.engine.query(sql, params)
            except QueryError as exc:
                # The engine's HNSW graphs serve a fixed number of searches at once (2 x the server's
                # cores) and refuse the rest; on a server other clients count too. Such a search
                # is retried: it succeeds once one of the others ends.
                if _BUSY not in str(exc) or attempt == _BUSY_RETRIES - 1:
                    raise
                time.sleep(0.002 * 2**attempt)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """Run a statement whose result is not needed."""
        self.query(sql, params)

    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, int] | None = None) -> None:
        """Append an Arrow table to table ``table`` of this store (columns matched by name)."""
        self.engine.insert_arrow(self.table(table), data, settings)

    def fact(self, key: str, compute: Callable[[], Any]) -> Any:
        """A fact about the store's tables (dimension, indexes), computed once and reused until a
        statement that may change it runs here, or, on a server that others also change, for
        ``engine.facts_ttl`` seconds."""
        ttl = self.engine.facts_ttl
        now = time.monotonic()
        with self._facts_lock:
            cached = self._facts.get(key)
        if cached is not None and (ttl is None or now - cached[0] < ttl):
            return cached[1]
        value = compute()
        with self._facts_lock:
            self._facts[key] = (now, value)
        return value

    def forget_facts(self) -> None:
        with self._facts_lock:
            self._facts.clear()

    def model_name(self) -> str:
        """The CLIP model for this store's text and image queries: the one given (``model=``),
        else ``$LAIONSEARCH_MODEL``, else the one ``ingest`` recorded as having made the
        vectors, else OpenAI's ViT-B/32."""
        from .clip.encoders import DEFAULT_MODEL
        from .schema import stored_origin

        return self.model or os.environ.get("LAIONSEARCH_MODEL") or stored_origin(self).get("model") or DEFAULT_MODEL

    def encoder(self):
        """This store's CLIP encoder (``model_name``; loaded on first use; needs the [clip] extra)."""
        from .clip.encoders import get_encoder

        return get_encoder(self.model_name())

    def tables(self) -> list[str]:
        """Names of the tables in this store's database."""
        rows = self.query(
            "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name", {"db": self.database}
        )
        return rows.column("name").to_pylist()

    def has_table(self, name: str) -> bool:
        return name in self.tables()

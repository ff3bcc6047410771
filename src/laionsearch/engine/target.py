"""What ``--db`` names: an embedded store directory or a ClickHouse server URL.

``./store`` or ``/data/laion`` is an embedded chDB data path.
``http(s)://[user[:password]@]host[:port][/database]`` is a ClickHouse server;
the user and password may also come from ``CLICKHOUSE_USER`` and
``CLICKHOUSE_PASSWORD``. ``chdb:///path`` runs the server code path
(clickhouse-connect) on the embedded engine: the tests use it to exercise that
path without a server. A password never appears in ``str`` or ``repr``.

A URL may end in ``?cluster=NAME``: the store spreads its rows over that ClickHouse
cluster (``cluster.py``). A ``chdb://`` URL passes its other options to chDB, e.g.
``chdb:///data?config-file=/etc/laion.xml&cluster=laion`` (a server config with the
cluster's ``remote_servers``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ArgumentError

DEFAULT_PATH = "./laionsearch-data"
SCHEMES = ("http", "https", "chdb")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Target:
    """Where a store lives. ``kind`` is ``embedded`` (a local path) or ``server`` (a URL)."""

    kind: str
    path: Path | None = None  # embedded, or chdb:// (the data path)
    scheme: str = ""  # http, https or chdb
    host: str = ""
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    cluster: str | None = None  # ?cluster=NAME: the ClickHouse cluster the rows are spread over
    options: tuple[tuple[str, str], ...] = ()  # chdb:// only: chDB's own connection options

    def __str__(self) -> str:
        cluster = f" (cluster {self.cluster})" if self.cluster else ""
        if self.scheme == "chdb":
            return f"chdb://{self.path}" + (f" (database {self.database})" if self.database else "") + cluster
        if self.kind == "embedded":
            return str(self.path)
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{user}{self.host}{port}/{self.database or ''}{cluster}"

    def __repr__(self) -> str:
        return f"Target({str(self)!r})"


def default_target() -> str:
    """``$LAIONSEARCH_DB`` if set, else ``./laionsearch-data``."""
    return os.environ.get("LAIONSEARCH_DB") or DEFAULT_PATH


def parse_target(db: str | os.PathLike | None) -> Target:
    """Read a ``--db`` value; ``None`` means the default."""
    text = str(db) if db is not None else default_target()
    if not text.strip():
        raise ArgumentError("--db is empty; give a store directory or a ClickHouse server URL")
    scheme, sep, _ = text.partition("://")
    if not sep:
        return Target("embedded", path=Path(text).expanduser().resolve())
    if scheme.lower() not in SCHEMES:
        raise ArgumentError(f"--db {_redact(text)}: unknown scheme {scheme!r}; use a path, http://, https:// or chdb://")
    url = urlsplit(text)
    if url.fragment:
        raise ArgumentError(f"--db {_redact(text)}: the URL takes no #fragment")
    cluster, options = _options(url.query, url.scheme.lower() == "chdb", _redact(text))
    if url.scheme == "chdb":
        # chdb:///abs/path or chdb://rel/path
        raw = (url.netloc + url.path) if url.netloc else url.path
        if not raw:
            raise ArgumentError("--db chdb://: give a data path, e.g. chdb:///var/lib/laionsearch")
        return Target("server", path=Path(unquote(raw)).expanduser().resolve(), scheme="chdb", cluster=cluster,
                      options=options)
    if not url.hostname:
        raise ArgumentError(f"--db {_redact(text)}: no host in the URL")
    try:
        port = url.port
    except ValueError:
        raise ArgumentError(f"--db {_redact(text)}: the port is not a number from 1 to 65535") from None
    database = unquote(url.path.strip("/")) or None
    if database is not None and "/" in database:
        raise ArgumentError(f"--db {_redact(text)}: the path names one database, e.g. http://host:8123/laion")
    return Target(
        "server",
        scheme=url.scheme,
        host=url.hostname,
        port=port,
        user=unquote(url.username) if url.username else os.environ.get("CLICKHOUSE_USER") or None,
        password=unquote(url.password) if url.password is not None else os.environ.get("CLICKHOUSE_PASSWORD"),
        database=database,
        cluster=cluster,
    )


def check_cluster_name(name: str) -> str:
    """``name`` if it can name a ClickHouse cluster in laionsearch's SQL, else ArgumentError."""
    if not _NAME.match(name):
        raise ArgumentError(f"bad cluster name {name!r}: use letters, digits, _ and -")
    return name


def _options(query: str, chdb: bool, shown: str) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The URL's ``cluster`` and, for chdb://, the options passed on to chDB."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ArgumentError(f"--db {shown}: cannot read the URL's ?options") from None
    cluster = None
    options = []
    for key, value in pairs:
        if key == "cluster":
            cluster = check_cluster_name(value)
        elif chdb:
            options.append((key, value))
        else:
            raise ArgumentError(f"--db {shown}: unknown option {key!r}; a server URL takes only ?cluster=NAME")
    return cluster, tuple(options)


def _redact(text: str) -> str:
    """The URL with any password replaced by ***."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{host}"

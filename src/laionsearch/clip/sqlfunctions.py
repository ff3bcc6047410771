"""``encode_text(String)`` and ``encode_image(String)`` in the store's SQL, and keeping them fast.

Every store opened by laionsearch gets both functions, returning
``Array(Float32)``: a Python UDF computes the vector (as JSON text, since
chDB's Python UDFs cannot return arrays) and a SQL function parses it.

Written inside ``ORDER BY cosineDistance(col, encode_text('…'))`` the engine
would call the model once per row and skip the vector index. So, before a
statement runs, every call whose argument is a string literal is encoded once
in Python and replaced by a query parameter: the guide's statements then run
with one encoder call and the index (see ``rewrite``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_KINDS = ("text", "image")
_CALL = re.compile(r"\bencode_(text|image)\(\s*'((?:[^'\\]|\\.|'')*)'\s*\)", re.IGNORECASE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "\\": "\\", "'": "'"}


def _encode(encoder, kind: str, value: str) -> list[float]:
    vector = encoder.encode_text(value) if kind == "text" else encoder.encode_image(value)
    return vector.tolist()


def register(store) -> None:
    """Make ``encode_text`` and ``encode_image`` available in ``store``'s SQL, with the store's model.

    Only engines that run Python functions (embedded chDB) get the per-row
    functions; on a server, literal calls still work through ``rewrite``, and
    ``udf export`` installs the functions on the server itself.
    """
    for kind in _KINDS:
        python_name = f"_laionsearch_encode_{kind}"
        if not store.engine.register_function(python_name, _json_encoder(store, kind)):
            return
        store.execute(
            f"CREATE FUNCTION IF NOT EXISTS encode_{kind} AS (x) -> "
            f"JSONExtract(assumeNotNull({python_name}(x)), 'Array(Float32)')"
        )


def _json_encoder(store, kind: str):
    def encode(value: str) -> str:
        return json.dumps(_encode(store.encoder(), kind, value))

    return encode


def rewrite(sql: str, params: dict, encoder: Callable[[], Any]) -> tuple[str, dict]:
    """Replace ``encode_text('…')``/``encode_image('…')`` with parameters holding the vectors.

    Each distinct literal is encoded once. Calls on anything but a string
    literal (a column, an expression) are left to the per-row SQL function.
    """
    if "encode_" not in sql.lower():
        return sql, params
    params = dict(params)
    names: dict[tuple[str, str], str] = {}

    def substitute(match: re.Match) -> str:
        kind, value = match.group(1).lower(), _unquote(match.group(2))
        key = (kind, value)
        if key not in names:
            names[key] = f"_laionsearch_{kind}_{len(names)}"
            params[names[key]] = _encode(encoder(), kind, value)
        return "{" + names[key] + ":Array(Float32)}"

    return _CALL.sub(substitute, sql), params


def _unquote(body: str) -> str:
    """The value of a ClickHouse string literal's body (backslash escapes and doubled quotes)."""
    return unescape(body, doubled_quotes=True)


def unescape(text: str, doubled_quotes: bool = False) -> str:
    """Undo ClickHouse's backslash escapes (string literals, TabSeparated fields); optionally '' -> '."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        elif doubled_quotes and c == "'" and text[i + 1 : i + 2] == "'":
            out.append("'")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


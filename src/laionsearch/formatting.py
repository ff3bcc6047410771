"""Rendering result rows as a terminal table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pyarrow as pa

FORMATS = ("table", "json", "csv")
_MAX_ARRAY_ITEMS = 4


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    """The rows as dicts (column order kept); NaN becomes None so that JSON stays valid."""
    return [{k: _clean(v) for k, v in row.items()} for row in table.to_pylist()]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def to_json(table: pa.Table) -> str:
    """One JSON array of objects, one per row; arrays as JSON lists."""
    return json.dumps(rows_of(table), ensure_ascii=False, default=str)


def to_csv(table: pa.Table) -> str:
    """CSV with a header row; arrays as JSON lists."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in rows_of(table):
        writer.writerow(json.dumps(v) if isinstance(v, list) else ("" if v is None else v) for v in row.values())
    return out.getvalue()


def to_rich_table(table: pa.Table):
    """A rich Table for the terminal; long arrays are abbreviated, control characters shown escaped."""
    from rich.table import Table

    view = Table(show_lines=False, header_style="bold")
    for name in table.column_names:
        numeric = pa.types.is_integer(table.schema.field(name).type) or pa.types.is_floating(
            table.schema.field(name).type
        )
        view.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows_of(table):
        view.add_row(*(_cell(v) for v in row.values()))
    return view


def _cell(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return ""
    if isinstance(value, list):
        head = ", ".join(_number(v) for v in value[:_MAX_ARRAY_ITEMS])
        more = f", … {len(value)} values" if len(value) > _MAX_ARRAY_ITEMS else ""
        return escape(f"[{head}{more}]")
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return escape(value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))
    return escape(str(value))


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def to_html_grid(table: pa.Table, *, max_rows: int = 100) -> str:
    """Result rows as an HTML grid of images with caption, distance and id (notebooks' ``_repr_html_``).

    Only http(s) URLs become image sources; every value is escaped.
    """
    from html import escape

    rows = rows_of(table.slice(0, max_rows))
    cards = []
    for row in rows:
        url = str(row.get("url") or "")
        picture = (f'<img src="{escape(url)}" loading="lazy" referrerpolicy="no-referrer" '
                   'style="width:100%;height:150px;object-fit:cover;background:#eee" alt="">'
                   if url.startswith(("http://", "https://")) else
                   '<div style="height:150px;background:#eee"></div>')
        facts = []
        if row.get("distance") is not None:
            facts.append(f"distance {row['distance']:.4f}")
        if row.get("id") is not None:
            facts.append(f"id {row['id']}")
        cards.append(
            '<figure style="margin:0;width:180px;font:12px sans-serif">'
            f"{picture}<figcaption>{escape(str(row.get('caption') or ''))}"
            f'<br><span style="color:#666">{escape(", ".join(facts))}</span></figcaption></figure>'
        )
    more = (f'<p style="font:12px sans-serif">… {table.num_rows - max_rows:,} more rows</p>'
            if table.num_rows > max_rows else "")
    return f'<div style="display:flex;flex-wrap:wrap;gap:8px">{"".join(cards)}</div>{more}'

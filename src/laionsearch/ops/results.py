"""What a search returns: its Arrow table, shown as an image grid in notebooks."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..formatting import to_html_grid


PLAN_KEY = b"laionsearch.plan"


def with_plan(table: pa.Table, plan: str) -> "SearchResult":
    """``table`` as a search result whose metadata says it ran with ``plan``."""
    return SearchResult(table.replace_schema_metadata({**(table.schema.metadata or {}), PLAN_KEY: plan.encode()}))


def plan_of(result: "SearchResult | pa.Table") -> str:
    """How a ``search`` result was computed: exact, ann, ann-rescored xN, ann-postfilter xN, exact-prefilter."""
    return (result.schema.metadata or {}).get(PLAN_KEY, b"").decode()


class SearchResult:
    """The rows of a search (``.table``, an Arrow table: id, url, caption, NSFW, similarity, distance).

    Behaves as that table (``num_rows``, ``column``, ``to_pylist``, ``to_pandas``…),
    converts wherever Arrow data is accepted (``pa.table(result)``, the Arrow
    PyCapsule interface), and displays in Jupyter as a grid of the images with
    their captions and distances.
    """

    def __init__(self, table: pa.Table):
        self.table = table

    @property
    def plan(self) -> str:
        """How it ran: exact, ann, ann-postfilter xN or exact-prefilter."""
        return plan_of(self.table)

    def to_arrow(self) -> pa.Table:
        return self.table

    def __getattr__(self, name: str) -> Any:
        return getattr(self.table, name)

    def __getitem__(self, key):
        return self.table[key]

    def __len__(self) -> int:
        return self.table.num_rows

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)

    def __repr__(self) -> str:
        return f"SearchResult({self.plan or 'unknown'} plan, {self.table.num_rows} rows)\n{self.table}"

    def _repr_html_(self) -> str:
        return to_html_grid(self.table)

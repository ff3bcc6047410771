"""Terminal output for the CLI: progress bars on stderr and result rows on stdout."""

from __future__ import annotations

import sys

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress as RichBar,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .formatting import to_csv, to_json, to_rich_table
from .progress import Progress

stdout = Console(soft_wrap=False)
stderr = Console(stderr=True)


def default_format() -> str:
    """``table`` on a terminal, ``json`` when piped."""
    return "table" if sys.stdout.isatty() else "json"


def print_rows(table: pa.Table, fmt: str | None = None) -> None:
    """Print result rows in ``fmt`` (table, json or csv)."""
    fmt = fmt or default_format()
    if fmt == "json":
        sys.stdout.write(to_json(table) + "\n")
    elif fmt == "csv":
        sys.stdout.write(to_csv(table))
    elif table.num_rows == 0:
        stderr.print("(no rows)")
    else:
        stdout.print(to_rich_table(table))


class RichProgress(Progress):
    """A progress bar per task on stderr; on a non-terminal, one line per finished task."""

    def __init__(self, unit: str = "rows"):
        self.unit = unit
        self._bar: RichBar | None = None
        self._task = None

    def start(self, label: str, total: int) -> None:
        if stderr.is_terminal:
            self._bar = RichBar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=stderr,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def advance(self, units: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, units)

    def finish(self, message: str | None = None) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if message:
            stderr.print(message, highlight=False)

"""Terminal output for the CLI: live progress bars on stderr, result rows on stdout.

One live display serves a whole command (``live_bars``); ``RichProgress`` and
``RichDownloadProgress`` adapt the library's progress interfaces to it. Without
a terminal (or with ``--no-progress``) there are no bars, only one line per
finished task.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress as RichBar,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from ..formatting import to_csv, to_json, to_rich_table
from ..progress import DownloadProgress, Progress

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def default_format() -> str:
    """``table`` on a terminal, ``json`` when piped."""
    return "table" if sys.stdout.isatty() else "json"


def print_rows(table: pa.Table, fmt: str | None = None, console: Console | None = None) -> None:
    """Print result rows in ``fmt`` (table, json or csv); a table goes to ``console`` (default stdout)."""
    fmt = fmt or default_format()
    if fmt == "json":
        sys.stdout.write(to_json(table) + "\n")
    elif fmt == "csv":
        sys.stdout.write(to_csv(table))
    elif table.num_rows == 0:
        stderr.print("(no rows)")
    else:
        (console or stdout).print(to_rich_table(table))


class _Amount(ProgressColumn):
    """'12.3/45.6 MB 3.2 MB/s' for byte tasks, '1,024/10,000 rows' otherwise."""

    def __init__(self):
        super().__init__()
        self._bytes, self._speed = DownloadColumn(), TransferSpeedColumn()

    def render(self, task) -> Text:
        if task.fields.get("unit") == "bytes":
            return Text.assemble(self._bytes.render(task), " ", self._speed.render(task))
        total = f"{int(task.total):,}" if task.total is not None else "?"
        return Text(f"{int(task.completed):,}/{total} {task.fields.get('unit', '')}", style="progress.download")


@contextlib.contextmanager
def live_bars(enabled: bool = True) -> Iterator[RichBar | None]:
    """A live progress display on stderr for the duration of a command, or None without a terminal."""
    if not (enabled and stderr.is_terminal):
        yield None
        return
    bars = RichBar(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), _Amount(), TimeRemainingColumn(),
        console=stderr, transient=True,
    )
    with bars:
        yield bars


def tell(message: str) -> None:
    """A line for the person at the terminal, on stderr: stdout carries only results (one JSON document when piped)."""
    stderr.print(message, highlight=False, markup=False)


def say(bars: RichBar | None, message: str) -> None:
    """Print a status line on stderr (above the bars when they are live)."""
    (bars.console if bars is not None else stderr).print(message, highlight=False, markup=False)


class RichProgress(Progress):
    """One bar per task (e.g. per part ingested), and a line when each ends."""

    def __init__(self, bars: RichBar | None, unit: str = "rows"):
        self.bars, self.unit, self._task = bars, unit, None

    def start(self, label: str, total: int) -> None:
        if self.bars is not None:
            self._task = self.bars.add_task(label, total=total, unit=self.unit)

    def advance(self, units: int) -> None:
        if self._task is not None:
            self.bars.advance(self._task, units)

    def finish(self, message: str | None = None) -> None:
        if self._task is not None:
            self.bars.remove_task(self._task)
            self._task = None
        if message:
            say(self.bars, message)


class RichDownloadProgress(DownloadProgress):
    """An overall bar (bytes, rate, ETA) and a bar per file in flight; a line per finished file."""

    def __init__(self, bars: RichBar | None):
        self.bars = bars
        self._lock = threading.Lock()
        self._files: dict[str, int] = {}
        self._overall = None

    def begin(self, files: int, total_bytes: int | None) -> None:
        if self.bars is None:
            return
        with self._lock:
            if self._overall is None:
                self._overall = self.bars.add_task("total", total=total_bytes, unit="bytes")
            elif total_bytes is not None:  # `get` begins once per part: the total grows
                task = self.bars.tasks[self._overall]
                self.bars.update(self._overall, total=(task.total or 0) + total_bytes)

    def file_started(self, name: str, size: int | None, have: int) -> None:
        if self.bars is None:
            return
        with self._lock:
            if name in self._files:
                self.bars.update(self._files[name], total=size, completed=have)
            else:
                self._files[name] = self.bars.add_task(name, total=size, completed=have, unit="bytes")
                self.bars.advance(self._overall, have)

    def advance(self, name: str, nbytes: int) -> None:
        if self.bars is None:
            return
        with self._lock:
            self.bars.advance(self._files[name], nbytes)
            self.bars.advance(self._overall, nbytes)

    def file_finished(self, result) -> None:
        with self._lock:
            task = self._files.pop(result.job.name, None)
            if self.bars is not None and task is not None:
                self.bars.remove_task(task)
            if self.bars is not None and result.skipped and result.job.expected:
                self.bars.advance(self._overall, result.job.expected.size)
        if result.skipped:
            say(self.bars, f"complete already: {result.job.name}")
        elif result.ok:
            say(self.bars, f"downloaded {result.job.name} ({result.transferred / 1e6:,.1f} MB)")
        else:
            say(self.bars, f"FAILED {result.job.name}: {result.error}")

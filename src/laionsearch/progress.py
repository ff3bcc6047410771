"""How long-running library work reports progress, without knowing who listens.

Library functions take a ``Progress``; the base class itself is silent.
Downloads, which run several files at once, take a ``DownloadProgress``. The
CLI passes rich progress bars (see ``cli.console``).
"""

from __future__ import annotations


class Progress:
    """Receives progress of a sequence of tasks, one at a time; this base reports nothing."""

    def start(self, label: str, total: int) -> None:
        """A task of ``total`` units begins."""

    def advance(self, units: int) -> None:
        """``units`` more units of the current task are done."""

    def finish(self, message: str | None = None) -> None:
        """The current task ended; ``message`` summarises it."""


class DownloadProgress:
    """Receives download progress from several threads at once; this base reports nothing."""

    def begin(self, files: int, total_bytes: int | None) -> None:
        """A download of ``files`` files (``total_bytes`` if known) begins."""

    def file_started(self, name: str, size: int | None, have: int) -> None:
        """Transfer of ``name`` starts (again); ``have`` bytes are already on disk."""

    def advance(self, name: str, nbytes: int) -> None:
        """``nbytes`` more bytes of ``name`` arrived."""

    def file_finished(self, result) -> None:
        """``result.job`` is complete, skipped, or given up on (an ``ops.download.FileResult``)."""

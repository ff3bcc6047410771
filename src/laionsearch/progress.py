"""How long-running library work reports progress, without knowing who listens.

Library functions take a ``Progress``; the base class itself is silent.
The CLI passes a rich progress bar (see ``cli.console.RichProgress``).
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

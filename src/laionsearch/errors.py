"""Exceptions raised by laionsearch.

Every error a user can cause derives from ``LaionsearchError`` and carries a
one-line message that says what went wrong and, where possible, how to fix it.
The CLI prints that line and exits non-zero; nothing else is caught there.

    LaionsearchError
    ├── PartError        a LAION part on disk is missing, malformed or inconsistent
    ├── IngestError      loading a valid part into the store failed
    ├── DownloadError    some files or parts could not be fetched
    ├── IndexingError    a vector index cannot be created, built or dropped
    ├── EncoderError     a text or image cannot be encoded (no model, not an image, empty text)
    ├── StoreError       the store cannot be opened or has an unexpected shape
    ├── QueryError       a search or SQL request is invalid (bad vector, unknown id, SQL error)
    └── ArgumentError    an argument is malformed (part selection, vector file, parameter)
"""

from __future__ import annotations


class LaionsearchError(Exception):
    """Base class of all errors laionsearch reports to users."""


class PartError(LaionsearchError):
    """A part's files are missing, unreadable or disagree with each other."""


class IngestError(LaionsearchError):
    """A part could not be loaded into the store; nothing of it was kept."""


class DownloadError(LaionsearchError):
    """Some files or parts could not be fetched; the message lists them."""


class IndexingError(LaionsearchError):
    """A vector index cannot be created, built or dropped as asked."""


class EncoderError(LaionsearchError):
    """A query text or image cannot be encoded (model missing, not an image, empty text)."""


class StoreError(LaionsearchError):
    """The store could not be opened or is not a laionsearch store."""


class QueryError(LaionsearchError):
    """A search or SQL request was rejected."""


class ArgumentError(LaionsearchError):
    """An argument could not be understood (part selection, vector file, parameter)."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (engine errors run long)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

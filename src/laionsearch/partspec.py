"""Part selections such as ``0-9``, ``3,7,100-120``."""

from __future__ import annotations

from .errors import ArgumentError

#: Releases have at most a few thousand parts (laion2B-en: 2,314); the ``part`` column and the id
#: formula allow far more, but a selection beyond this is a typo, not a download plan.
MAX_PART = 99_999


def parse_parts(spec: str) -> list[int]:
    """Parse ``"0-2,7"`` into ``[0, 1, 2, 7]`` (sorted, without duplicates)."""
    parts: set[int] = set()
    if not spec or not spec.strip():
        raise ArgumentError("empty part selection; use e.g. 0-9 or 3,7,100-120")
    for item in spec.split(","):
        item = item.strip()
        lo, sep, hi = item.partition("-")
        try:
            start = int(lo)
            end = int(hi) if sep else start
        except ValueError:
            raise ArgumentError(f"bad part selection {item!r}; use e.g. 0-9 or 3,7,100-120") from None
        if start < 0 or end < start:
            raise ArgumentError(f"bad part range {item!r}: numbers must be >= 0 and ascending")
        if end > MAX_PART:
            raise ArgumentError(f"bad part number in {item!r}: parts are numbered 0 to {MAX_PART:,} at most")
        parts.update(range(start, end + 1))
    return sorted(parts)

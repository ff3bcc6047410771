"""Byte sizes as people write and read them: ``8GB``, ``512 MB``, ``1.5G``."""

from __future__ import annotations

import re

from .errors import ArgumentError

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


def parse_size(value: int | str, what: str = "size") -> int:
    """Bytes from ``value``: a whole number, or a number with kB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = value, ""
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ArgumentError(f"{what}: {value!r} is not a size; write e.g. 8GB, 512MB or 1073741824")
        number, unit = float(match.group(1)), (match.group(2) or "").lower()
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise ArgumentError(f"{what}: must be more than 0 bytes, got {value!r}")
    return size


def human(n: int | float) -> str:
    """``n`` bytes as TB (from 10 TB up), GB (from 1 GB up) or MB, one decimal."""
    if n >= 1e13:
        return f"{n / 1e12:,.1f} TB"
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"

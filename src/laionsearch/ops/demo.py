"""The main job on a fresh machine: synthetic parts -> ingest -> example searches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from .ingest import IngestReport, ingest
from ..errors import PartError
from ..release.layouts import check_part, find_parts
from ..progress import Progress
from ..schema import row_id
from .search import search_like
from ..store import Store
from ..release.synth import SynthSpec, synth_parts

DEMO_PARTS = (0, 1)
DEMO_ROWS = 50_000
#: A row with an ordinary caption (rows 0-11 carry the awkward test captions).
DEMO_ROW = row_id(0, 12)


@dataclass
class DemoResult:
    """What the demo did and found."""

    parts_folder: Path
    ingest: IngestReport
    query_id: int
    nearest: pa.Table
    nearest_safe: pa.Table


def run_demo(
    store: Store, folder: str | Path, *, rows: int = DEMO_ROWS, k: int = 5, progress: Progress | None = None
) -> DemoResult:
    """Synthesise the demo parts into ``folder`` (unless already there), ingest them, search."""
    folder = Path(folder)
    spec = SynthSpec(rows=rows)
    missing = [p for p in DEMO_PARTS if not _have_part(folder, p, rows)]
    if missing:
        synth_parts(folder, missing, spec, progress)
    report = ingest(store, folder, list(DEMO_PARTS), progress=progress)
    nearest = search_like(store, DEMO_ROW, column="image", k=k)
    nearest_safe = search_like(store, DEMO_ROW, column="image", k=k, nsfw=["UNLIKELY"])
    return DemoResult(folder, report, DEMO_ROW, nearest, nearest_safe)


def _have_part(folder: Path, number: int, rows: int) -> bool:
    try:
        return check_part(find_parts(folder, [number])[0]).rows == rows
    except PartError:
        return False

"""The whole job on a fresh machine, shown step by step on synthetic LAION-format parts.

synth -> ingest -> HNSW index -> recall and latency per ef -> one query exact, through the
index and with the vectors held in memory -> the guide's SQL verbatim -> a filter. ``run_demo`` yields
what to show as it goes (``Heading``, ``Rows``, ``Line``); the CLI renders it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..errors import ArgumentError, PartError
from ..progress import Progress
from ..release.layouts import check_part, find_parts
from ..release.synth import SynthSpec, synth_parts
from ..schema import row_id
from ..sizes import human
from ..store import Store
from .evaluate import evaluate
from .held import hold_vectors, release_vectors
from .index import create_index, index_status
from .ingest import ingest
from .results import plan_of
from .search import search_like, vector_of

DEMO_PARTS = (0, 1)
DEMO_ROWS = 50_000
#: A row with an ordinary caption (rows 0-11 carry the awkward test captions).
DEMO_ROW = row_id(0, 12)
#: Builds in seconds, not the guide's minutes (M=64, ef_construction=256), at a small cost in recall.
DEMO_INDEX = dict(quantization="bf16", m=16, ef_construction=64)
DEMO_EFS = (16, 64, 256)
SHOWN = ["id", "caption", "NSFW", "distance"]
GUIDE_SQL = "SELECT url, caption FROM laion ORDER BY cosineDistance(image_embedding, {target:Array(Float32)}) LIMIT 10"


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Line:
    text: str


@dataclass(frozen=True)
class Rows:
    table: pa.Table


Shown = Heading | Line | Rows


def _held_in_memory(store: Store, k: int, exact_rows: set[int]) -> Iterator[Shown]:
    """Exact search again, reading the column from the table and then from a copy held in memory."""
    table_ms, table_rows = _exact_median(store, k)
    try:
        report = hold_vectors(store, "image")
    except ArgumentError as exc:  # too little free memory, say
        yield Line(f"(exact search with the vectors held in memory skipped: {exc})")
        return
    try:
        held_ms, held_rows = _exact_median(store, k)
    finally:
        release_vectors(store, "image")
    yield Line(f"exact search, median of 3: {table_ms:.1f} ms reading the vectors from the table, "
               f"{held_ms:.1f} ms with them held in memory ({human(report.bytes)}; serve --hold-vectors), "
               + ("the same rows" if table_rows == held_rows == exact_rows else "DIFFERENT rows"))


def _exact_median(store: Store, k: int) -> tuple[float, set[int]]:
    """Milliseconds of the median of three exact searches for the demo row's neighbours, and the rows found."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        result = search_like(store, DEMO_ROW, column="image", k=k, exact=True)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[1], set(result.column("id").to_pylist())


def run_demo(
    store: Store, folder: str | Path, *, rows: int = DEMO_ROWS, k: int = 5, progress: Progress | None = None
) -> Iterator[Shown]:
    """Synthesise the demo parts into ``folder`` (unless there), ingest, index, evaluate and search; yield what to show."""
    folder = Path(folder)
    missing = [p for p in DEMO_PARTS if not _have_part(folder, p, rows)]
    yield Heading(f"1. Two LAION-format parts of {rows:,} synthetic rows each (img_emb, text_emb, metadata)")
    if missing:
        synth_parts(folder, missing, SynthSpec(rows=rows), progress)
    yield Line(f"in {folder}: the release's file layout, so the next steps run unchanged on real LAION parts")

    yield Heading("2. Ingest: streamed, checked, one atomic step per part (re-runs skip stored parts)")
    yield Line(ingest(store, folder, list(DEMO_PARTS), progress=progress).summary())

    yield Heading("3. An HNSW vector index on the image embeddings")
    existing = [s for s in index_status(store) if s.column == "image" and s.state == "built"]
    if existing:
        yield Line(f"already built: {existing[0].definition}")
    else:
        seconds = create_index(store, "image", progress=progress, **DEMO_INDEX)
        yield Line(f"built in {seconds:.1f} s with M={DEMO_INDEX['m']}, ef_construction={DEMO_INDEX['ef_construction']}: "
                   "chosen to build fast. The guide's M=64, ef_construction=256 (the default of `laionsearch index "
                   "create`) took 2x as long at 100,000 rows for higher recall at small ef (docs/benchmarks.md)")
    status = [s for s in index_status(store) if s.column == "image"][0]
    yield Line(f"{status.definition}: {status.parts_indexed} of {status.parts_total} data parts, "
               f"{status.bytes_in_memory / 1e6:,.0f} MB in memory")

    yield Heading("4. Recall@10 against exact search, and latency, per ef (`laionsearch eval`)")
    measured = evaluate(store, column="image", queries=100, k=10, efs=DEMO_EFS, progress=progress)
    yield Rows(pa.Table.from_pylist([
        {"setting": r.setting, "recall@10": f"{r.recall:.3f}", "p50 ms": f"{r.p50_ms:.1f}",
         "p95 ms": f"{r.p95_ms:.1f}", "queries/s": f"{r.qps:.0f}"} for r in measured
    ]))

    yield Heading(f"5. The rows nearest to row {DEMO_ROW}'s image: exact search, then through the index")
    found = {}
    for exact in (True, False):
        started = time.perf_counter()
        result = search_like(store, DEMO_ROW, column="image", k=k, exact=exact)
        ms = (time.perf_counter() - started) * 1000
        found[exact] = set(result.column("id").to_pylist())
        yield Line(f"plan: {plan_of(result)}, {ms:.1f} ms")
        yield Rows(result.select(SHOWN))
    yield Line(f"the index found {len(found[True] & found[False])} of the exact top {k}")
    yield from _held_in_memory(store, k, found[True])

    yield Heading("6. The guide's SQL, verbatim, with the same row's vector as {target}")
    yield Line(GUIDE_SQL)
    yield Rows(store.query(GUIDE_SQL, {"target": vector_of(store, DEMO_ROW, "image")}).slice(0, k))

    yield Heading("7. With a filter: NSFW = UNLIKELY only (k rows come back whenever k rows match)")
    yield Rows(search_like(store, DEMO_ROW, column="image", k=k, nsfw=["UNLIKELY"]).select(SHOWN))


def next_steps(db: str, folder: Path, *, port: int = 1234) -> list[str]:
    """What to run after the demo: the web page, then the same on real LAION parts."""
    return [
        "The web page and HTTP API on this store:",
        f"  laionsearch --db {db} serve --port {port}      then open http://127.0.0.1:{port}/",
        "More on this store:",
        f"  laionsearch --db {db} search --like-id {DEMO_ROW} --column text -k 5",
        f"  laionsearch --db {db} sql \"SELECT NSFW, count() FROM laion GROUP BY NSFW\"",
        "The same on real LAION-400M (each part: ~1M rows, 2.2 GB to download, ~4.3 GB stored as float32):",
        "  laionsearch --db ./laion get --parts 0-9 --dest ./laion400m",
        "  laionsearch --db ./laion index create --column both",
        "  pip install 'laionsearch[clip]'      # CLIP ViT-B/32 for text and image queries",
        "  laionsearch --db ./laion search --text \"a dog and a cat\" -k 10",
        f"(synthetic parts: {folder})",
    ]


def _have_part(folder: Path, number: int, rows: int) -> bool:
    try:
        return check_part(find_parts(folder, [number])[0]).rows == rows
    except PartError:
        return False

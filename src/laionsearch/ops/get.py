"""``get``: download and ingest part by part, with bounded disk use.

A helper thread downloads parts in order and hands each complete part to the
main thread, which ingests it while the next part downloads. At most one
downloaded part waits, so about two parts' raw files are on disk at a time.
A part's raw files are deleted only after that part is in the store. Parts
already in the store are not downloaded again.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .download import DownloadReport, RetryPolicy, download, part_jobs
from ..errors import LaionsearchError
from .ingest import IngestReport, ingest
from ..progress import DownloadProgress, Progress
from ..schema import stored_parts
from ..release.datasets import Dataset, Manifest
from ..store import Store


@dataclass
class GetReport:
    ingested: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    rows: int = 0
    transferred: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        text = (
            f"got {len(self.ingested)} part(s): {self.transferred / 1e6:,.1f} MB downloaded, "
            f"{self.rows:,} rows ingested in {self.seconds:.1f} s"
        )
        if self.already:
            text += f"; {len(self.already)} part(s) already in the store"
        if self.failed:
            text += f"; {len(self.failed)} FAILED: " + "; ".join(f"part {p}: {e}" for p, e in self.failed.items())
        return text


def get(
    store: Store,
    source: Dataset,
    parts: list[int],
    dest: str | Path,
    *,
    base_url: str | None = None,
    manifest: Manifest | None = None,
    verify: bool = True,
    keep_raw: bool = False,
    workers: int = 4,
    policy: RetryPolicy = RetryPolicy(),
    download_progress: DownloadProgress | None = None,
    ingest_progress: Progress | None = None,
) -> GetReport:
    """Download and ingest ``parts`` of ``source``; failures are reported per part, not raised."""
    dest = Path(dest)
    started = time.perf_counter()
    report = GetReport()
    stored = stored_parts(store)
    report.already = [p for p in parts if p in stored]
    todo = [p for p in parts if p not in stored]
    plans = {p: part_jobs(source, [p], dest, base_url=base_url, manifest=manifest, verify=verify) for p in todo}
    ready: queue.Queue = queue.Queue(maxsize=1)

    def fetch_all() -> None:
        for part in todo:
            ready.put((part, download(plans[part], workers=workers, policy=policy, progress=download_progress)))
        ready.put(None)

    threading.Thread(target=fetch_all, daemon=True, name="laionsearch-download").start()
    while (item := ready.get()) is not None:
        part, fetched = item
        report.transferred += fetched.transferred
        _ingest_fetched(store, source, dest, part, fetched, plans[part], keep_raw, ingest_progress, report)
    report.seconds = time.perf_counter() - started
    return report


def _ingest_fetched(store, source: Dataset, dest, part, fetched: DownloadReport, jobs, keep_raw, progress,
                    report: GetReport) -> None:
    if fetched.failed:
        report.failed[part] = "; ".join(f"{f.job.name}: {f.error}" for f in fetched.failed)
        return
    try:
        result: IngestReport = ingest(store, dest, [part], model=source.model, dataset=source.name,
                                      progress=progress)
    except LaionsearchError as exc:
        report.failed[part] = str(exc)  # raw files stay, to inspect or retry
        return
    report.ingested.append(part)
    report.rows += result.rows
    if not keep_raw:
        for job in jobs:
            job.dest.unlink(missing_ok=True)

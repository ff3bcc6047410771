"""Fetching LAION parts over HTTP: parallel, resumable, verified.

Each file is written to ``NAME.partial`` and resumed with an HTTP Range request
after any interruption, in this run or a later one; a server that ignores Range
restarts the file from byte 0. Connection errors, timeouts, truncated bodies,
HTTP 5xx and 429 (honouring ``Retry-After``) are retried with exponential
backoff and jitter, up to a bounded number of attempts per file. A finished
file is checked by its own format (an ``.npy`` header whose array fills the file
exactly; parquet magic at both ends and a readable footer), against the
expected size and SHA-256 (from the package's manifest for LAION-400M, else the
server's Content-Length), and only then renamed to its final name, so a file
under its final name is always complete, with or without a manifest.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from ..errors import ArgumentError, PartError
from ..progress import DownloadProgress
from ..release.layouts import check_file
from ..release.datasets import KINDS, Dataset, Expected, Manifest, builtin_manifest

CHUNK = 1 << 20
PARTIAL = ".partial"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one file."""

    attempts: int = 10
    backoff: float = 1.0  # first wait, seconds; doubles per attempt
    max_backoff: float = 120.0
    timeout: float = 60.0  # seconds without progress before a connection counts as dead

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): exponential with jitter."""
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class FileJob:
    """One file to fetch."""

    url: str
    dest: Path
    name: str  # relative path, for messages
    expected: Expected | None = None


@dataclass
class FileResult:
    job: FileJob
    ok: bool
    transferred: int = 0  # bytes received over the network in this run
    attempts: int = 0
    skipped: bool = False  # already complete on disk
    error: str | None = None


@dataclass
class DownloadReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if not f.ok]

    @property
    def transferred(self) -> int:
        return sum(f.transferred for f in self.files)

    def summary(self) -> str:
        done = sum(f.ok and not f.skipped for f in self.files)
        skipped = sum(f.skipped for f in self.files)
        text = f"downloaded {done} file(s), {self.transferred / 1e6:,.1f} MB in {self.seconds:.1f} s"
        if skipped:
            text += f"; {skipped} already complete"
        if self.failed:
            text += f"; {len(self.failed)} FAILED: " + "; ".join(f"{f.job.name}: {f.error}" for f in self.failed)
        return text


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _GiveUp(Exception):
    pass


def part_jobs(
    source: Dataset, parts: Iterable[int], dest: Path, *, base_url: str | None = None,
    kinds: Iterable[str] = KINDS, manifest: Manifest | None = None, verify: bool = True,
) -> list[FileJob]:
    """The files of ``parts``; fails before any transfer if a part is not in the manifest.

    ``manifest`` defaults to the one shipped for ``source`` (if any); with
    ``verify=False`` files are checked against Content-Length only.
    """
    base = (base_url or source.base_url).rstrip("/") + "/"
    if not verify:
        manifest = None
    elif manifest is None and source.manifest:
        manifest = builtin_manifest(source.manifest)
    jobs = []
    for part in parts:
        for kind in kinds:
            name = source.path(part, kind)
            expected = manifest.get(name) if manifest is not None else None
            if manifest is not None and expected is None:
                raise ArgumentError(f"{name} is not part of the {source.name} release (not in its manifest)")
            jobs.append(FileJob(base + name, dest / name, name, expected))
    return jobs


def download(
    jobs: list[FileJob], *, workers: int = 4, policy: RetryPolicy = RetryPolicy(),
    progress: DownloadProgress | None = None, client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadReport:
    """Fetch ``jobs`` with ``workers`` parallel transfers; never raises for a failed file."""
    if workers < 1:
        raise ArgumentError("--jobs must be at least 1")
    progress = progress or DownloadProgress()
    started = time.perf_counter()
    sizes = [j.expected.size if j.expected else None for j in jobs]
    progress.begin(len(jobs), None if None in sizes else sum(sizes))
    own_client = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(policy.timeout), follow_redirects=True)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda job: fetch(client, job, policy, progress, sleep), jobs))
    finally:
        if own_client:
            client.close()
    return DownloadReport(results, time.perf_counter() - started)


def fetch(
    client: httpx.Client, job: FileJob, policy: RetryPolicy, progress: DownloadProgress,
    sleep: Callable[[float], None] = time.sleep,
) -> FileResult:
    """Fetch one file, resuming and retrying as needed."""
    result = FileResult(job, ok=False)
    if job.dest.exists() and (job.expected is None or job.dest.stat().st_size == job.expected.size):
        result.ok = result.skipped = True
        progress.file_finished(result)
        return result
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    partial = job.dest.with_name(job.dest.name + PARTIAL)
    while result.attempts < policy.attempts:
        result.attempts += 1
        try:
            _transfer(client, job, partial, progress, result)
            _verify(job, partial)
            partial.replace(job.dest)
            result.ok = True
            break
        except _GiveUp as exc:
            result.error = str(exc)
            break
        except _Retry as exc:
            result.error = f"{exc} (after {result.attempts} attempt(s))"
            if result.attempts < policy.attempts:
                wait = policy.wait(result.attempts) if exc.retry_after is None else exc.retry_after
                sleep(min(wait, policy.max_backoff))
    progress.file_finished(result)
    return result


def _transfer(client: httpx.Client, job: FileJob, partial: Path, progress: DownloadProgress, result: FileResult) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    if job.expected and have > job.expected.size:
        partial.unlink()
        have = 0
    if job.expected and have == job.expected.size:
        return  # complete already; verification decides
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with client.stream("GET", job.url, headers=headers) as response:
            status = response.status_code
            if status == 416:  # our partial is not a prefix the server knows: start over
                partial.unlink(missing_ok=True)
                raise _Retry("server rejected the resume range; restarting", retry_after=0)
            if status == 429 or status >= 500:
                raise _Retry(f"HTTP {status}", _retry_after(response.headers.get("Retry-After")))
            if status >= 400:
                raise _GiveUp(f"HTTP {status} for {job.url}")
            if status == 206 and not _range_starts_at(response.headers.get("Content-Range"), have):
                partial.unlink(missing_ok=True)
                raise _Retry("server answered a different range; restarting", retry_after=0)
            if status != 206:
                have = 0  # the server ignored Range: the body is the whole file
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            if job.expected and total is not None and total != job.expected.size:
                raise _GiveUp(f"server says {total} bytes, the manifest {job.expected.size}")
            progress.file_started(job.name, total or (job.expected.size if job.expected else None), have)
            with open(partial, "ab" if have else "wb") as out:
                for chunk in response.iter_bytes():  # as received: a cut keeps every byte that arrived
                    out.write(chunk)
                    result.transferred += len(chunk)
                    progress.advance(job.name, len(chunk))
    except httpx.TransportError as exc:  # connection refused/reset, timeout, body cut short
        raise _Retry(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    if total is not None and partial.stat().st_size != total:
        raise _Retry(f"body ended at {partial.stat().st_size} of {total} bytes")


def _verify(job: FileJob, partial: Path) -> None:
    try:  # whatever the manifest says: an error page or a cut body under the final name would pass for data
        check_file(partial, kind_of=job.dest)
    except PartError as exc:
        partial.unlink(missing_ok=True)
        raise _Retry(f"not a whole {job.dest.suffix} file, deleted ({str(exc).partition(': ')[2]})") from None
    if job.expected is None:
        return
    size = partial.stat().st_size
    if size != job.expected.size:
        raise _Retry(f"size {size} differs from the expected {job.expected.size}")
    if job.expected.sha256 and sha256_of(partial) != job.expected.sha256:
        partial.unlink()
        raise _Retry("SHA-256 mismatch; file deleted")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK * 8):
            digest.update(block)
    return digest.hexdigest()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _range_starts_at(content_range: str | None, offset: int) -> bool:
    # "bytes 100-199/200"
    try:
        return int(content_range.split()[1].split("-")[0]) == offset
    except (AttributeError, IndexError, ValueError):
        return False


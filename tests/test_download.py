"""Downloads against a real local HTTP server that injects faults."""

import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from laionsearch.ops.download import RetryPolicy, download, part_jobs, sha256_of
from laionsearch.release.datasets import DATASETS, Expected, builtin_manifest, dataset

from .conftest import run_cli, write_manifest


LAION = DATASETS["laion400m"]
FILES = ("img_emb/img_emb_0.npy", "text_emb/text_emb_0.npy", "metadata/metadata_0.parquet")
FAST = RetryPolicy(attempts=6, backoff=0.01, timeout=10)


def run(server, dest, manifest, parts=(0,), sleeps=None, **kw):
    jobs = part_jobs(LAION, parts, dest, base_url=server.url, manifest=manifest)
    return download(jobs, policy=kw.pop("policy", FAST), sleep=(sleeps.append if sleeps is not None else lambda s: None), **kw)


def assert_identical(src, dest, names=FILES):
    for name in names:
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == sha256_of(src / name), name
        assert not (dest / (name + ".partial")).exists()


def test_clean_download_lands_in_the_released_layout(server, parts_dir, tmp_path, manifest):
    report = run(server, tmp_path, manifest, parts=(0, 1), workers=3)
    assert not report.failed and len(report.files) == 6
    assert_identical(parts_dir, tmp_path, [n for p in (0, 1) for n in manifest if f"_{p}." in n])
    assert report.transferred == sum(e.size for e in manifest.values())
    again = run(server, tmp_path, manifest, parts=(0, 1))
    assert again.transferred == 0 and all(f.skipped for f in again.files)


def test_dropped_connections_resume_with_range(server, parts_dir, tmp_path, manifest):
    name = FILES[0]
    size = manifest[name].size
    offsets = sorted(random.Random(5).sample(range(1, size), 3))
    server.faults[name] = [f"drop@{o - (offsets[i - 1] if i else 0)}" for i, o in enumerate(offsets)]
    report = run(server, tmp_path, manifest)
    assert not report.failed
    assert_identical(parts_dir, tmp_path)
    assert server.requests(name) == [None] + [f"bytes={o}-" for o in offsets]
    assert server.sent[name] == size  # nothing fetched twice
    assert report.files[0].attempts == 4


@pytest.mark.parametrize("fault", ["500", "503", "truncate", "corrupt"])
def test_transient_faults_are_retried(server, parts_dir, tmp_path, manifest, fault):
    for name in FILES:
        server.faults[name] = [fault, fault]
    report = run(server, tmp_path, manifest)
    assert not report.failed
    assert_identical(parts_dir, tmp_path)
    assert all(f.attempts == 3 for f in report.files)


def test_429_honours_retry_after(server, parts_dir, tmp_path, manifest):
    server.faults[FILES[2]] = ["429"]
    sleeps = []
    report = run(server, tmp_path, manifest, sleeps=sleeps)
    assert not report.failed
    assert sleeps == [2.0]
    assert_identical(parts_dir, tmp_path)


def test_server_without_range_support_restarts_the_file(server, parts_dir, tmp_path, manifest):
    name = FILES[0]
    size = manifest[name].size
    server.faults[name] = ["drop@100000"]
    server.ranges = False
    report = run(server, tmp_path, manifest)
    assert not report.failed
    assert_identical(parts_dir, tmp_path)
    assert server.sent[name] == 100000 + size


def test_persistent_corruption_is_an_error_and_leaves_nothing(server, parts_dir, tmp_path, manifest):
    server.faults[FILES[1]] = ["corrupt"] * 10
    report = run(server, tmp_path, manifest)
    (bad,) = report.failed
    assert bad.job.name == FILES[1] and "SHA-256 mismatch" in bad.error and bad.attempts == FAST.attempts
    assert not (tmp_path / FILES[1]).exists() and not (tmp_path / (FILES[1] + ".partial")).exists()
    assert_identical(parts_dir, tmp_path, [FILES[0], FILES[2]])  # the other files still arrived
    assert "1 FAILED" in report.summary()


def test_missing_file_gives_up_at_once(server, tmp_path, manifest):
    (tmp_path / "src").mkdir()
    manifest = dict(manifest)
    jobs = part_jobs(LAION, [0], tmp_path / "dest", base_url=server.url + "nothing-here/", manifest=manifest)
    report = download(jobs, policy=FAST, sleep=lambda s: None)
    assert len(report.failed) == 3
    assert all("HTTP 404" in f.error and f.attempts == 1 for f in report.failed)


def test_size_disagreeing_with_manifest_is_refused(server, tmp_path, manifest):
    wrong = dict(manifest)
    wrong[FILES[2]] = Expected(manifest[FILES[2]].size + 1, manifest[FILES[2]].sha256)
    report = run(server, tmp_path, wrong)
    (bad,) = report.failed
    assert "the manifest" in bad.error


def test_builtin_manifest_and_layouts():
    m = builtin_manifest("laion400m.tsv")
    assert len(m) == 1230
    assert m["img_emb/img_emb_8.npy"].size == 658099328
    assert m["metadata/metadata_0.parquet"].sha256 and len(m["metadata/metadata_0.parquet"].sha256) == 64
    assert dataset("laion2B-en").path(7, "metadata") == "laion2B-en-metadata/metadata_0007.parquet"
    assert LAION.path(7, "img") == "img_emb/img_emb_7.npy"
    with pytest.raises(Exception, match="not part of the laion400m release"):
        part_jobs(LAION, [410], Path("/tmp"))


@pytest.mark.slow
def test_killed_download_resumes_instead_of_restarting(server, parts_dir, tmp_path, manifest):
    name = FILES[0]
    size = manifest[name].size
    write_manifest(manifest, tmp_path / "manifest.tsv")
    args = ["download", "--parts", "0", "--dest", str(tmp_path / "dl"), "--base-url", server.url,
            "--manifest", str(tmp_path / "manifest.tsv"), "--kinds", "img", "--jobs", "1"]
    server.throttle = 0.05  # ~1.3 MB/s, so the kill lands mid-file
    proc = subprocess.Popen([sys.executable, "-m", "laionsearch", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = tmp_path / "dl" / (name + ".partial")
    deadline = time.time() + 60
    while not (partial.exists() and partial.stat().st_size >= 300_000) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = partial.stat().st_size
    assert 300_000 <= kept < size
    server.throttle = 0.0
    out = run_cli(*args)
    assert server.log[name][-1] == {"range": f"bytes={kept}-", "sent": size - kept}  # only the missing bytes
    assert len(server.log[name]) == 2
    assert hashlib.sha256((tmp_path / "dl" / name).read_bytes()).hexdigest() == manifest[name].sha256
    assert "downloaded 1 file(s)" in out.stderr


def test_cli_exit_status_says_whether_everything_arrived(server, tmp_path, manifest):
    write_manifest(manifest, tmp_path / "manifest.tsv")
    server.faults[FILES[1]] = ["corrupt"] * 3
    args = ["download", "--parts", "0", "--dest", str(tmp_path / "dl"), "--base-url", server.url,
            "--manifest", str(tmp_path / "manifest.tsv"), "--attempts", "3"]
    failed = run_cli(*args, check=False)
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: downloaded 2 file(s)") and "1 FAILED: text_emb/text_emb_0.npy: SHA-256 mismatch" in last
    assert "downloaded img_emb/img_emb_0.npy" in failed.stderr  # one line per finished file when piped
    again = run_cli(*args)
    assert "downloaded 1 file(s)" in again.stderr and "2 already complete" in again.stderr


def test_cli_rejects_unknown_dataset_and_bad_kinds(tmp_path):
    proc = run_cli("download", "--parts", "0", "--dataset", "laion9", check=False)
    assert proc.returncode == 1 and "unknown dataset 'laion9'" in proc.stderr
    proc = run_cli("download", "--parts", "0", "--kinds", "img,audio", check=False)
    assert proc.returncode == 1 and "--kinds" in proc.stderr


@pytest.mark.parametrize("name", FILES)
def test_without_a_manifest_an_error_page_or_a_short_file_is_never_kept(server, parts_dir, tmp_path, name):
    """No sizes or checksums to go by (LAION-5B, --no-checksums): each file is checked by its own format."""
    server.faults[name] = ["html", "short"]
    jobs = part_jobs(LAION, [0], tmp_path, base_url=server.url, manifest=None, verify=False)
    assert all(job.expected is None for job in jobs)
    report = download(jobs, policy=FAST, sleep=lambda s: None)
    assert not report.failed
    assert_identical(parts_dir, tmp_path)
    assert len(server.requests(name)) == 3  # the error page and the half file were refused and fetched again

    server.faults[name] = ["html"] * 10
    other = tmp_path / "again"
    report = download(part_jobs(LAION, [0], other, base_url=server.url, manifest=None, verify=False),
                      policy=RetryPolicy(attempts=2, backoff=0.01, timeout=10), sleep=lambda s: None)
    assert [f.job.name for f in report.failed] == [name] and "not a whole" in report.failed[0].error
    assert not (other / name).exists() and not (other / (name + ".partial")).exists()

"""Shared fixtures: one chDB store path per test session, one database per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import shutil

import numpy as np
import pytest

from laionsearch import Store, SynthSpec, synth_parts
from laionsearch.ops.download import sha256_of
from laionsearch.release.datasets import Expected

from .fault_server import FaultServer

SMALL_ROWS = 2000


@pytest.fixture(scope="session", autouse=True)
def clip_cache(tmp_path_factory) -> Path:
    """Converted CLIP models go to this session's folder (CLI subprocesses inherit it), not ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["LAIONSEARCH_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def store_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store")


#: How the store-level tests reach ClickHouse: the embedded engine; the server code path
#: (clickhouse-connect) on chDB's backend for the driver; a real server, when
#: LAIONSEARCH_TEST_URL names one (docs/server.md).
BACKENDS = ("embedded", "driver", "server")
TEST_URL = os.environ.get("LAIONSEARCH_TEST_URL")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, store_path) -> str:
    """The ``--db`` value of one backend (the tests using it run once per backend)."""
    if request.param == "embedded":
        return str(store_path)
    if request.param == "driver":
        return f"chdb://{store_path}"
    if not TEST_URL:
        pytest.skip("LAIONSEARCH_TEST_URL is not set: no ClickHouse server to run the server tests on (docs/server.md)")
    return TEST_URL


@pytest.fixture
def store(backend) -> Store:
    """A fresh, empty store (its own database) on each backend."""
    return Store(backend, database=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def embedded_store(store_path) -> Store:
    """A fresh, empty store on the embedded engine only (for what only chDB has, e.g. Python functions)."""
    return Store(store_path, database=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def parts_dir(tmp_path_factory) -> Path:
    """Two synthetic parts (0 and 1) of SMALL_ROWS rows, 512-d, released layout. Read-only."""
    folder = tmp_path_factory.mktemp("parts")
    synth_parts(folder, [0, 1], SynthSpec(rows=SMALL_ROWS, seed=7))
    return folder


def run_cli(*args: str, db: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``laionsearch`` in a subprocess (its own chDB store) and return the finished process."""
    cmd = [sys.executable, "-m", "laionsearch"]
    if db is not None:
        cmd += ["--db", str(db)]
    env = {k: v for k, v in os.environ.items() if k != "LAIONSEARCH_DB"}
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"laionsearch {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def cli_json(*args: str, db: Path) -> list[dict]:
    """Run a row-printing command with ``--format json`` and parse its output."""
    return json.loads(run_cli(*args, "--format", "json", db=db).stdout)


def copy_parts(src: Path, dst: Path, numbers=(0, 1)) -> Path:
    """Copy parts in the released layout, to damage them without touching the shared ones."""
    for n in numbers:
        for sub, name in (("img_emb", f"img_emb_{n}.npy"), ("text_emb", f"text_emb_{n}.npy"),
                          ("metadata", f"metadata_{n}.parquet")):
            (dst / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(src / sub / name, dst / sub / name)
    return dst


@pytest.fixture
def server(parts_dir):
    """A fault-injecting HTTP server on 127.0.0.1 serving the synthetic parts."""
    srv = FaultServer(parts_dir).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="session")
def manifest(parts_dir) -> dict:
    """Sizes and SHA-256 of the synthetic parts' files, keyed by relative path."""
    return {
        str(path.relative_to(parts_dir)): Expected(path.stat().st_size, sha256_of(path))
        for path in sorted(parts_dir.rglob("*_[01].*"))
    }


def write_manifest(manifest: dict, path: Path) -> Path:
    path.write_text("".join(f"{name}\t{e.size}\t{e.sha256}\n" for name, e in manifest.items()))
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """A randomly initialised 2-layer CLIP (512-d outputs) saved like a real one; skipped without the [clip] extra."""
    pytest.importorskip("transformers", reason="the [clip] extra (transformers, torch, pillow) is not installed")
    from laionsearch.clip.randomclip import save_random_clip

    return str(save_random_clip(tmp_path_factory.mktemp("tinyclip")))


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """Six small PNG images of different colours and sizes, plus a file that is not an image."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        pixels = (rng.random((24 + 4 * i, 32, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"photo_{i}.png")
    (folder / "notes.jpg").write_text("not an image")
    return folder

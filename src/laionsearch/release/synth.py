"""Synthetic LAION-format parts, for tests, demos and benchmarks.

The files have the release's exact format (SPEC §2): ``img_emb/img_emb_N.npy``
and ``text_emb/text_emb_N.npy`` are NPY v1.0 ``<f2`` arrays, C order,
L2-normalised; ``metadata/metadata_N.parquet`` has the 15 released columns in
their order and types. Image vectors are drawn around shared cluster centres
so that nearest-neighbour search is meaningful; each text vector lies close to
its image vector. Output depends only on (seed, part, rows, dim).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ArgumentError
from ..progress import Progress

METADATA_SCHEMA = pa.schema(
    [
        ("image_path", pa.string()),
        ("caption", pa.string()),
        ("NSFW", pa.string()),
        ("similarity", pa.float64()),
        ("LICENSE", pa.string()),
        ("url", pa.string()),
        ("key", pa.int64()),
        ("shard_id", pa.int64()),
        ("status", pa.string()),
        ("error_message", pa.null()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("exif", pa.string()),
        ("original_width", pa.int64()),
        ("original_height", pa.int64()),
    ]
)

#: Captions real data contains and naive pipelines break on. Rows 0..len-1 of
#: every part carry them in this order, then every 20th row cycles through them.
AWKWARD_CAPTIONS: tuple[str | None, ...] = (
    "It's a \"quoted\" caption",
    "single ' quote",
    'double " quote',
    "back\\slash and \\n that is not a newline",
    "tab\tseparated\tcaption",
    "multi\nline\ncaption",
    "Ελληνικά, 中文, русский, العربية, हिन्दी",
    "emoji 🐱🚀🌈",
    "",
    None,
    "mixed '\"\\ all \t at \n once",
    "  leading and trailing spaces  ",
)

_TOPICS = (
    "cat", "dog", "mountain", "beach", "city skyline", "bicycle", "guitar", "teapot",
    "forest", "sports car", "wedding dress", "sunflower", "robot", "castle", "sushi", "violin",
)
_STYLES = ("a photo of a", "an oil painting of a", "a sketch of a", "close-up of a", "vintage poster with a")
_NSFW_VALUES = np.array(["UNLIKELY", "UNSURE", "NSFW", None], dtype=object)
_NSFW_PROBS = (0.85, 0.08, 0.05, 0.02)
_CHUNK_ROWS = 65536


@dataclass(frozen=True)
class SynthSpec:
    """What to generate: ``rows`` rows of ``dim``-d vectors per part, around ``clusters`` centres."""

    rows: int
    dim: int = 512
    seed: int = 0
    clusters: int = 64
    spread: float = 0.6  # norm of the noise added to a unit cluster centre (image vectors)
    text_noise: float = 0.5  # norm of the noise added to the image vector (text vectors)


def cluster_centres(spec: SynthSpec) -> np.ndarray:
    """The unit-norm cluster centres shared by all parts of a seed."""
    rng = np.random.default_rng([spec.seed, 2**31])
    centres = rng.standard_normal((spec.clusters, spec.dim))
    return (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)


def synth_parts(folder: str | Path, parts: list[int], spec: SynthSpec, progress: Progress | None = None) -> list[Path]:
    """Write parts ``parts`` into ``folder`` in the released sub-folder layout; return the files written."""
    if spec.rows <= 0:
        raise ArgumentError("--rows must be at least 1")
    if spec.dim <= 0:
        raise ArgumentError("--dim must be at least 1")
    folder = Path(folder)
    for sub in ("img_emb", "text_emb", "metadata"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    progress = progress or Progress()
    centres = cluster_centres(spec)
    written: list[Path] = []
    for part in parts:
        progress.start(f"synth part {part}", spec.rows)
        written += _write_part(folder, part, spec, centres, progress)
        progress.finish(f"part {part}: {spec.rows:,} rows")
    return written


def _write_part(folder: Path, part: int, spec: SynthSpec, centres: np.ndarray, progress: Progress) -> list[Path]:
    rng = np.random.default_rng([spec.seed, part])
    paths = [
        folder / "img_emb" / f"img_emb_{part}.npy",
        folder / "text_emb" / f"text_emb_{part}.npy",
        folder / "metadata" / f"metadata_{part}.parquet",
    ]
    # Write under temporary names so an interrupted synth never leaves a plausible-looking part.
    tmp = [p.with_name(p.name + ".tmp") for p in paths]
    img = np.lib.format.open_memmap(tmp[0], mode="w+", dtype="<f2", shape=(spec.rows, spec.dim))
    text = np.lib.format.open_memmap(tmp[1], mode="w+", dtype="<f2", shape=(spec.rows, spec.dim))
    with pq.ParquetWriter(tmp[2], METADATA_SCHEMA) as writer:
        for start in range(0, spec.rows, _CHUNK_ROWS):
            n = min(_CHUNK_ROWS, spec.rows - start)
            clusters = rng.integers(0, spec.clusters, n)
            img_chunk = _unit(centres[clusters] + _noise(rng, n, spec.dim, spec.spread))
            text_chunk = _unit(img_chunk + _noise(rng, n, spec.dim, spec.text_noise))
            img[start : start + n] = img_chunk
            text[start : start + n] = text_chunk
            writer.write_table(_metadata(rng, part, start, n, clusters))
            progress.advance(n)
    img.flush()
    text.flush()
    del img, text
    for src, dst in zip(tmp, paths):
        src.replace(dst)
    return paths


def _noise(rng: np.random.Generator, n: int, dim: int, norm: float) -> np.ndarray:
    return rng.standard_normal((n, dim), dtype=np.float32) * np.float32(norm / np.sqrt(dim))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _metadata(rng: np.random.Generator, part: int, start: int, n: int, clusters: np.ndarray) -> pa.Table:
    rows = np.arange(start, start + n)
    key = (part % 100) * 10_000_000 + rows % 10_000_000  # nine digits, like the release's image_path
    shard = key // 10000
    styles = rng.integers(0, len(_STYLES), n)
    captions: list[str | None] = [
        f"{_STYLES[s]} {_TOPICS[c % len(_TOPICS)]} #{r}" for s, c, r in zip(styles, clusters, rows)
    ]
    for i, r in enumerate(rows):
        if r < len(AWKWARD_CAPTIONS):
            captions[i] = AWKWARD_CAPTIONS[r]
        elif r % 20 == 0:
            captions[i] = AWKWARD_CAPTIONS[(r // 20) % len(AWKWARD_CAPTIONS)]
    nsfw = rng.choice(_NSFW_VALUES, n, p=_NSFW_PROBS)
    similarity = rng.uniform(0.28, 0.45, n)
    similarity[rng.random(n) < 0.01] = np.nan
    # Make sure even tiny parts contain a null NSFW and a NaN similarity.
    nsfw[rows == 2] = None
    similarity[rows == 1] = np.nan
    width = rng.integers(64, 1024, n)
    height = rng.integers(64, 1024, n)
    scale = rng.integers(1, 4, n)
    return pa.Table.from_pydict(
        {
            "image_path": [f"{k:09d}" for k in key],
            "caption": captions,
            "NSFW": nsfw.tolist(),
            "similarity": similarity,
            "LICENSE": np.where(rng.random(n) < 0.9, "?", "CC-BY 4.0").tolist(),
            "url": [f"https://images.example.org/laion/{part}/{r}.jpg" for r in rows],
            "key": key,
            "shard_id": shard,
            "status": ["success"] * n,
            "error_message": pa.nulls(n),
            "width": width,
            "height": height,
            "exif": [json.dumps({"Image Width": int(w), "Image Height": int(h)}) for w, h in zip(width, height)],
            "original_width": width * scale,
            "original_height": height * scale,
        },
        schema=METADATA_SCHEMA,
    )

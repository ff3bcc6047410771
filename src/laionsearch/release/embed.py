"""``embed``: the user's own images (and captions) as LAION-format parts that ``ingest`` loads.

Writes ``img_emb/img_emb_N.npy`` and ``text_emb/text_emb_N.npy`` (float16, like
the release) and ``metadata/metadata_N.parquet`` with the release's 15 columns:
``url`` is the image's ``file://`` URI, ``caption`` comes from the captions
file, ``similarity`` is the cosine between the image and caption vectors.
Images without a caption get their file name (stem, ``_``/``-`` as spaces) as
caption. Files that are not readable images are skipped and reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..clip.encoders import BATCH, get_encoder, load_image
from ..errors import ArgumentError, EncoderError
from ..progress import Progress
from .synth import METADATA_SCHEMA

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class EmbedReport:
    part: int
    rows: int
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> reason


def read_captions(path: str | Path) -> dict[str, str]:
    """``file name<TAB>caption`` lines (a header line ``file<TAB>caption`` is allowed)."""
    captions = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ArgumentError(f"--captions: cannot read {path} ({exc.strerror})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, sep, caption = line.partition("\t")
        if not sep:
            raise ArgumentError(f"{path}:{number}: expected 'file name<TAB>caption'")
        captions[name.strip()] = caption
    captions.pop("file", None)
    return captions


def embed_images(
    images_dir: str | Path,
    out_dir: str | Path,
    *,
    captions: dict[str, str] | None = None,
    part: int = 0,
    model: str | None = None,
    progress: Progress | None = None,
) -> EmbedReport:
    """Encode every image in ``images_dir`` into part ``part`` under ``out_dir``."""
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise ArgumentError(f"{images_dir}: not a folder")
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ArgumentError(f"{images_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    captions = captions or {}
    encoder = get_encoder(model)
    progress = progress or Progress()
    report = EmbedReport(part, 0)
    kept, sizes, img_vecs, text_vecs = [], [], [], []
    progress.start(f"embedding {images_dir.name}", len(paths))
    for start in range(0, len(paths), BATCH):
        batch, pictures = [], []
        for path in paths[start : start + BATCH]:
            try:
                pictures.append(load_image(path))
                batch.append(path)
            except EncoderError as exc:
                report.skipped[path.name] = str(exc)
        if batch:
            texts = [captions.get(p.name) or p.stem.replace("_", " ").replace("-", " ") for p in batch]
            img_vecs.append(encoder.encode_images(pictures))
            text_vecs.append(encoder.encode_texts(texts))
            kept += list(zip(batch, texts))
            sizes += [pic.size for pic in pictures]
        progress.advance(len(paths[start : start + BATCH]))
    progress.finish()
    if not kept:
        raise EncoderError(f"{images_dir}: none of the files could be read as an image")
    img, text = np.concatenate(img_vecs), np.concatenate(text_vecs)
    report.rows = len(kept)
    report.files = _write_part(out_dir, part, img, text, kept, sizes)
    return report


def _write_part(out_dir: Path, part: int, img: np.ndarray, text: np.ndarray, kept, sizes) -> list[Path]:
    paths = [
        out_dir / "img_emb" / f"img_emb_{part}.npy",
        out_dir / "text_emb" / f"text_emb_{part}.npy",
        out_dir / "metadata" / f"metadata_{part}.parquet",
    ]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    np.save(paths[0], img.astype("<f2"))
    np.save(paths[1], text.astype("<f2"))
    n = len(kept)
    width = [w for w, _ in sizes]
    height = [h for _, h in sizes]
    table = pa.Table.from_pydict(
        {
            "image_path": [f"{i:09d}" for i in range(n)],
            "caption": [caption for _, caption in kept],
            "NSFW": [None] * n,
            "similarity": np.sum(img * text, axis=1).astype(np.float64),
            "LICENSE": ["?"] * n,
            "url": [path.resolve().as_uri() for path, _ in kept],
            "key": list(range(n)),
            "shard_id": [0] * n,
            "status": ["success"] * n,
            "error_message": pa.nulls(n),
            "width": width,
            "height": height,
            "exif": [json.dumps({})] * n,
            "original_width": width,
            "original_height": height,
        },
        schema=METADATA_SCHEMA,
    )
    pq.write_table(table, paths[2])
    return paths

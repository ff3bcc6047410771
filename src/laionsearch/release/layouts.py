"""Where a LAION part's three files live on disk, and whether they are sound.

A part N is three files with the same row order: ``img_emb_N.npy`` and
``text_emb_N.npy`` (float arrays of shape ``(rows, dim)``) and
``metadata_N.parquet``. Releases put them in sub-folders (``img_emb/``,
``text_emb/``, ``metadata/`` or ``{subset}-metadata/`` for LAION-5B); the
ClickHouse guide keeps all three side by side. Numbers may be zero-padded
(LAION-5B: ``0000``) or not (LAION-400M).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import PartError, first_line

#: Metadata columns laionsearch loads; every other column is ignored.
REQUIRED_COLUMNS = ("url", "caption", "NSFW", "similarity")
#: Loaded when the part has them (every LAION release does); 0 or '' otherwise.
OPTIONAL_COLUMNS = ("width", "height", "original_width", "original_height", "LICENSE", "key", "image_path")

_PATTERNS = {
    "img_emb": re.compile(r"^img_emb_(\d+)\.npy$"),
    "text_emb": re.compile(r"^text_emb_(\d+)\.npy$"),
    "metadata": re.compile(r"^metadata_(\d+)\.parquet$"),
}
_SUFFIX = {"img_emb": ".npy", "text_emb": ".npy", "metadata": ".parquet"}


@dataclass(frozen=True)
class Part:
    """The three files of one part (paths may not exist yet: see ``check_part``)."""

    number: int
    img_emb: Path
    text_emb: Path
    metadata: Path

    @property
    def files(self) -> tuple[Path, Path, Path]:
        return (self.img_emb, self.text_emb, self.metadata)


@dataclass(frozen=True)
class NpyInfo:
    """Header facts of one ``.npy`` file."""

    path: Path
    rows: int
    dim: int
    dtype: np.dtype
    data_offset: int


@dataclass(frozen=True)
class CheckedPart:
    """A part whose files exist and agree with each other."""

    part: Part
    rows: int
    dim: int
    img: NpyInfo
    text: NpyInfo

    @property
    def number(self) -> int:
        return self.part.number


class ReleasedLayout:
    """Sub-folder layout of the LAION releases (``img_emb/``, ``text_emb/``, ``metadata/``)."""

    name = "released"

    def folders(self, root: Path, kind: str) -> list[Path]:
        if kind == "metadata":
            # LAION-5B names the folder after the subset: laion2B-en-metadata/
            return [root / "metadata", *sorted(root.glob("*-metadata"))]
        return [root / kind]


class FlatLayout:
    """All three files of every part side by side, as in the ClickHouse guide."""

    name = "flat"

    def folders(self, root: Path, kind: str) -> list[Path]:
        return [root]


#: Tried in order; the first layout in which any part file is found wins.
LAYOUTS = (ReleasedLayout(), FlatLayout())


def _scan(folders: list[Path], kind: str) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _PATTERNS[kind].match(path.name)
            if not match:
                continue
            number = int(match.group(1))
            if number in found and found[number] != path:
                raise PartError(f"part {number}: two {kind} files: {found[number]} and {path}")
            found[number] = path
    return found


def find_parts(root: str | Path, numbers: list[int] | None = None) -> list[Part]:
    """Find the parts in ``root`` (all of them, or just ``numbers``), sorted by number.

    A part with a missing file is still returned, with the path the file was
    expected at, so that ``check_part`` can name it.
    """
    root = Path(root)
    if not root.is_dir():
        raise PartError(f"{root}: not a folder")
    for layout in LAYOUTS:
        scans = {kind: _scan(layout.folders(root, kind), kind) for kind in _PATTERNS}
        present = set().union(*scans.values())
        if present:
            break
    else:
        raise PartError(
            f"{root}: no LAION part files found (expected img_emb_N.npy, text_emb_N.npy and "
            "metadata_N.parquet, side by side or in img_emb/, text_emb/, metadata/)"
        )
    wanted = sorted(present) if numbers is None else sorted(set(numbers))
    missing = [n for n in wanted if n not in present]
    if missing:
        raise PartError(f"{root}: no files for part(s) {_short_list(missing)}")
    parts = []
    for number in wanted:
        digits = _digits_of(scans, number)
        paths = {}
        for kind in _PATTERNS:
            paths[kind] = scans[kind].get(number) or (
                layout.folders(root, kind)[0] / f"{kind}_{digits}{_SUFFIX[kind]}"
            )
        parts.append(Part(number, paths["img_emb"], paths["text_emb"], paths["metadata"]))
    return parts


def _digits_of(scans: dict[str, dict[int, Path]], number: int) -> str:
    """The number as written in this part's existing file names (keeps zero-padding)."""
    for kind, files in scans.items():
        if number in files:
            return _PATTERNS[kind].match(files[number].name).group(1)
    return str(number)


def _short_list(numbers: list[int]) -> str:
    text = ", ".join(map(str, numbers[:10]))
    return text + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def read_npy_header(path: Path) -> NpyInfo:
    """Read and check an ``.npy`` header: a C-ordered 2-D float array whose data is all there."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported npy version {version}")
            offset = f.tell()
    except FileNotFoundError:
        raise PartError(f"{path}: missing") from None
    except (ValueError, OSError) as exc:
        raise PartError(f"{path}: not a valid .npy file ({first_line(exc)})") from None
    if dtype.kind != "f":
        raise PartError(f"{path}: embeddings must be floats, found dtype {dtype.str}")
    if len(shape) != 2 or shape[1] == 0:
        raise PartError(f"{path}: expected a 2-D array (rows, dim), found shape {shape}")
    if fortran:
        raise PartError(f"{path}: Fortran-ordered arrays are not supported; save it in C order")
    rows, dim = shape
    expected = offset + rows * dim * dtype.itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise PartError(f"{path}: truncated: header says {rows} x {dim} ({expected} bytes), file has {actual} bytes")
    if actual > expected:
        raise PartError(f"{path}: {actual - expected} bytes more than its header's {rows} x {dim} array")
    return NpyInfo(path, rows, dim, dtype, offset)


def check_file(path: Path, kind_of: str | Path | None = None) -> None:
    """Check that one release file is whole by its own format (``PartError`` if not): an ``.npy``
    header whose array fills the file exactly, or a parquet file with its magic at both ends and a
    readable footer. ``kind_of`` names the file whose suffix decides (e.g. for ``x.npy.partial``)."""
    suffix = Path(kind_of or path).suffix
    if suffix == ".npy":
        read_npy_header(path)
    elif suffix == ".parquet":
        try:
            with open(path, "rb") as f:
                head = f.read(4)
                f.seek(max(0, path.stat().st_size - 4))
                tail = f.read(4)
            if head != b"PAR1" or tail != b"PAR1":
                raise PartError(f"{path}: not a parquet file (no PAR1 magic at both ends: an error page, or cut short?)")
            pq.ParquetFile(path).metadata
        except (pa.ArrowException, OSError) as exc:
            raise PartError(f"{path}: not a readable parquet file ({first_line(exc)})") from None


def check_part(part: Part) -> CheckedPart:
    """Check that a part's three files exist and agree; raise ``PartError`` naming the bad file."""
    for path in part.files:
        if not path.is_file():
            raise PartError(f"part {part.number}: missing {path}")
    img = read_npy_header(part.img_emb)
    text = read_npy_header(part.text_emb)
    if img.dim != text.dim:
        raise PartError(
            f"part {part.number}: dimension mismatch: {img.path.name} has {img.dim}, {text.path.name} has {text.dim}"
        )
    try:
        meta = pq.ParquetFile(part.metadata)
        meta_rows = meta.metadata.num_rows
        columns = meta.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise PartError(f"{part.metadata}: not a readable parquet file ({first_line(exc)})") from None
    if not img.rows == text.rows == meta_rows:
        raise PartError(
            f"part {part.number}: row counts differ: {img.path.name} {img.rows}, "
            f"{text.path.name} {text.rows}, {part.metadata.name} {meta_rows}"
        )
    absent = [c for c in REQUIRED_COLUMNS if c not in columns]
    if absent:
        raise PartError(f"{part.metadata}: missing column(s) {', '.join(absent)}")
    if img.rows == 0:
        raise PartError(f"part {part.number}: has no rows")
    return CheckedPart(part, img.rows, img.dim, img, text)

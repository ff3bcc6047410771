import shutil

import numpy as np
import pytest

from laionsearch import PartError, check_part, find_parts, ingest, stored_parts

from .conftest import copy_parts


def test_finds_released_layout(parts_dir):
    parts = find_parts(parts_dir)
    assert [p.number for p in parts] == [0, 1]
    checked = check_part(parts[1])
    assert (checked.rows, checked.dim) == (2000, 512)
    assert checked.part.metadata == parts_dir / "metadata" / "metadata_1.parquet"


def test_finds_flat_layout(parts_dir, tmp_path):
    for sub in ("img_emb", "text_emb", "metadata"):
        for f in (parts_dir / sub).iterdir():
            shutil.copy(f, tmp_path / f.name)
    assert [p.number for p in find_parts(tmp_path, [1])] == [1]
    assert check_part(find_parts(tmp_path)[0]).rows == 2000


def test_finds_laion5b_layout_with_padded_names(parts_dir, tmp_path):
    (tmp_path / "img_emb").mkdir()
    (tmp_path / "text_emb").mkdir()
    (tmp_path / "laion2B-en-metadata").mkdir()
    shutil.copy(parts_dir / "img_emb" / "img_emb_1.npy", tmp_path / "img_emb" / "img_emb_0001.npy")
    shutil.copy(parts_dir / "text_emb" / "text_emb_1.npy", tmp_path / "text_emb" / "text_emb_0001.npy")
    shutil.copy(parts_dir / "metadata" / "metadata_1.parquet", tmp_path / "laion2B-en-metadata" / "metadata_0001.parquet")
    (part,) = find_parts(tmp_path)
    assert part.number == 1
    assert check_part(part).rows == 2000


def test_unknown_part_and_empty_folder(parts_dir, tmp_path):
    with pytest.raises(PartError, match="no files for part"):
        find_parts(parts_dir, [5])
    with pytest.raises(PartError, match="no LAION part files"):
        find_parts(tmp_path)


def _npy(path, array):
    np.save(path, array)


BAD_PARTS = {
    "missing file": (lambda d: (d / "text_emb" / "text_emb_1.npy").unlink(), "text_emb_1.npy", "missing"),
    "row-count mismatch": (
        lambda d: _npy(d / "img_emb" / "img_emb_1.npy", np.zeros((1999, 512), "<f2")), "row counts differ", ""),
    "dimension mismatch": (
        lambda d: _npy(d / "text_emb" / "text_emb_1.npy", np.zeros((2000, 768), "<f2")), "dimension mismatch", ""),
    "non-float dtype": (
        lambda d: _npy(d / "img_emb" / "img_emb_1.npy", np.zeros((2000, 512), "<i4")), "img_emb_1.npy", "dtype <i4"),
    "truncated npy": (
        lambda d: _truncate(d / "img_emb" / "img_emb_1.npy", 1000), "img_emb_1.npy", "truncated"),
    "not an npy": (
        lambda d: (d / "text_emb" / "text_emb_1.npy").write_bytes(b"hello"), "text_emb_1.npy", "not a valid .npy"),
    "corrupt parquet": (
        lambda d: _truncate(d / "metadata" / "metadata_1.parquet", 500), "metadata_1.parquet", "not a readable parquet"),
}


def _truncate(path, nbytes):
    data = path.read_bytes()
    path.write_bytes(data[:-nbytes])


@pytest.mark.parametrize("case", sorted(BAD_PARTS))
def test_bad_part_is_named_and_nothing_is_written(case, parts_dir, tmp_path, store):
    damage, text, detail = BAD_PARTS[case]
    folder = copy_parts(parts_dir, tmp_path)
    damage(folder)
    with pytest.raises(PartError) as err:
        ingest(store, folder)
    message = str(err.value)
    assert text in message and detail in message
    assert "\n" not in message
    # Part 0 is fine, but the run stops before writing anything.
    assert stored_parts(store) == {}

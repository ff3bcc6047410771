import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from laionsearch import SynthSpec, synth_parts
from laionsearch.release.synth import AWKWARD_CAPTIONS, METADATA_SCHEMA

RELEASED_COLUMNS = [
    "image_path", "caption", "NSFW", "similarity", "LICENSE", "url", "key", "shard_id", "status",
    "error_message", "width", "height", "exif", "original_width", "original_height",
]


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_npy_files_match_the_release_format(parts_dir):
    path = parts_dir / "img_emb" / "img_emb_0.npy"
    raw = path.read_bytes()
    assert raw[:8] == b"\x93NUMPY\x01\x00"  # NPY v1.0
    header_len = int.from_bytes(raw[8:10], "little")
    assert 10 + header_len == 128
    header = raw[10:128].decode("latin1")
    assert "'descr': '<f2'" in header and "'fortran_order': False" in header and "(2000, 512)" in header
    assert len(raw) == 128 + 2000 * 512 * 2


def test_vectors_are_normalised_and_text_is_close_to_image(parts_dir):
    img = np.load(parts_dir / "img_emb" / "img_emb_0.npy").astype(np.float32)
    text = np.load(parts_dir / "text_emb" / "text_emb_0.npy").astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=2e-3)
    own = np.sum(img * text, axis=1)
    assert own.min() > 0.8
    # Clustered: a row's nearest other row is far closer than a random pair.
    sims = img[:200] @ img.T
    np.fill_diagonal(sims[:, :200], -1)
    assert np.median(sims.max(axis=1)) > 0.6
    assert abs(np.median(img[:200] @ img[200:400].T)) < 0.2


def test_metadata_has_the_released_columns_and_awkward_values(parts_dir):
    table = pq.read_table(parts_dir / "metadata" / "metadata_0.parquet")
    assert table.column_names == RELEASED_COLUMNS
    assert table.schema.equals(METADATA_SCHEMA)
    assert table.schema.field("similarity").type == pa.float64()
    assert table.schema.field("key").type == pa.int64()
    captions = table.column("caption").to_pylist()
    for awkward in AWKWARD_CAPTIONS:
        assert awkward in captions
    assert None in table.column("NSFW").to_pylist()
    assert np.isnan(table.column("similarity").to_numpy(zero_copy_only=False)).any()
    assert all(len(p) == 9 and p.isdigit() for p in table.column("image_path").to_pylist())


def test_same_seed_gives_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    files_a = synth_parts(a, [3], SynthSpec(rows=300, dim=16, seed=1))
    files_b = synth_parts(b, [3], SynthSpec(rows=300, dim=16, seed=1))
    files_c = synth_parts(c, [3], SynthSpec(rows=300, dim=16, seed=2))
    assert [_sha(f) for f in files_a] == [_sha(f) for f in files_b]
    assert _sha(files_a[0]) != _sha(files_c[0])
    assert not list(a.rglob("*.tmp"))


def test_other_dimensions(tmp_path):
    (img, _, _) = synth_parts(tmp_path, [0], SynthSpec(rows=50, dim=768))
    assert np.load(img).shape == (50, 768)

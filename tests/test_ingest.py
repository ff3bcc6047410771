import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest

from laionsearch import (
    ArgumentError,
    IngestError,
    PartError,
    SynthSpec,
    ingest,
    row_id,
    search_like,
    stored_parts,
    synth_parts,
    vector_of,
)
from laionsearch.schema import ID_STRIDE, stored_storage, to_bfloat16

from .conftest import SMALL_ROWS, cli_json, copy_parts, run_cli


def stored_rows(store, part):
    return store.query(
        f"SELECT * FROM {store.table('laion')} WHERE part = {{p:UInt32}} ORDER BY id", {"p": part}
    ).to_pylist()


def test_every_value_round_trips(store, parts_dir):
    report = ingest(store, parts_dir)
    assert report.rows == 2 * SMALL_ROWS
    for part in (0, 1):
        rows = stored_rows(store, part)
        meta = pq.read_table(parts_dir / "metadata" / f"metadata_{part}.parquet").to_pylist()
        img = np.load(parts_dir / "img_emb" / f"img_emb_{part}.npy")
        text = np.load(parts_dir / "text_emb" / f"text_emb_{part}.npy")
        assert len(rows) == len(meta) == SMALL_ROWS
        for i, (row, src) in enumerate(zip(rows, meta)):
            assert row["id"] == row_id(part, i) == part * ID_STRIDE + i
            assert row["part"] == part
            assert row["url"] == src["url"]
            assert row["caption"] == (src["caption"] if src["caption"] is not None else "")
            assert row["NSFW"] == (src["NSFW"] if src["NSFW"] is not None else "")
            expected = np.float32(src["similarity"])
            assert (math.isnan(row["similarity"]) and np.isnan(expected)) or row["similarity"] == expected
        # float16 -> float32 is exact, so stored vectors equal the source bit for bit.
        stored_img = np.array([r["image_embedding"] for r in rows], dtype=np.float32)
        stored_text = np.array([r["text_embedding"] for r in rows], dtype=np.float32)
        assert np.array_equal(stored_img, img.astype(np.float32))
        assert np.array_equal(stored_text, text.astype(np.float32))


def test_awkward_captions_survive(store, parts_dir):
    ingest(store, parts_dir, [0])
    captions = [r["caption"] for r in stored_rows(store, 0)[:12]]
    assert captions[0] == "It's a \"quoted\" caption"
    assert captions[3] == "back\\slash and \\n that is not a newline"
    assert captions[5] == "multi\nline\ncaption"
    assert captions[7] == "emoji 🐱🚀🌈"
    assert captions[9] == ""  # null caption


def test_ids_are_unique_and_stable(store, parts_dir):
    ingest(store, parts_dir)
    (row,) = store.query(f"SELECT count() AS n, uniqExact(id) AS u, max(id) AS m FROM {store.table('laion')}").to_pylist()
    assert row == {"n": 2 * SMALL_ROWS, "u": 2 * SMALL_ROWS, "m": row_id(1, SMALL_ROWS - 1)}


def test_reingest_is_a_no_op_and_force_does_not_duplicate(store, parts_dir):
    ingest(store, parts_dir, [0])
    again = ingest(store, parts_dir)
    assert [(p.part, p.skipped) for p in again.parts] == [(0, True), (1, False)]
    assert stored_parts(store) == {0: SMALL_ROWS, 1: SMALL_ROWS}
    forced = ingest(store, parts_dir, [1], force=True)
    assert forced.rows == SMALL_ROWS
    assert stored_parts(store) == {0: SMALL_ROWS, 1: SMALL_ROWS}
    assert "already in the store" in again.summary()


@pytest.mark.slow
def test_reingesting_gives_the_disk_back_before_the_command_ends(parts_dir, tmp_path):
    """Each command is its own process, as a user runs them: the replaced copy must be gone when it exits."""
    db = tmp_path / "db"

    def stored_bytes():
        return sum(f.stat().st_size for f in (db / "store").rglob("*") if f.is_file())

    run_cli("ingest", str(parts_dir), db=db)
    first = stored_bytes()
    for _ in range(3):
        run_cli("ingest", str(parts_dir), "--force", db=db)
    assert stored_bytes() < first * 1.1  # not 4 copies
    leftover = cli_json("sql", "SELECT count() AS n FROM system.parts WHERE table = 'laion' AND NOT active", db=db)
    assert leftover == [{"n": 0}]


def test_small_batches_give_the_same_rows(store, parts_dir):
    ingest(store, parts_dir, [1], batch_rows=333)
    rows = stored_rows(store, 1)
    assert [r["id"] for r in rows] == [row_id(1, i) for i in range(SMALL_ROWS)]


def test_dimension_must_match_the_store(store, parts_dir, tmp_path):
    ingest(store, parts_dir, [0])
    synth_parts(tmp_path, [5], SynthSpec(rows=10, dim=768))
    with pytest.raises(PartError, match="768.*512-d"):
        ingest(store, tmp_path)


def test_corrupt_data_inside_parquet_keeps_nothing_of_that_part(store, parts_dir, tmp_path):
    """A footer that reads fine but a broken column chunk is only found while loading."""
    folder = copy_parts(parts_dir, tmp_path)
    path = folder / "metadata" / "metadata_1.parquet"
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(5)  # url
    start = chunk.data_page_offset
    data[start + 20 : start + 400] = b"\xff" * 380
    path.write_bytes(bytes(data))
    with pytest.raises((IngestError, PartError)) as err:
        ingest(store, folder)
    assert "metadata_1.parquet" in str(err.value)
    assert stored_parts(store) == {0: SMALL_ROWS}  # part 0 landed whole, part 1 not at all
    assert not [t for t in store.tables() if t.startswith("laion_stage_")]


def test_nan_embeddings_are_refused_with_count_and_first_row(store, parts_dir, tmp_path):
    folder = copy_parts(parts_dir, tmp_path)
    vectors = np.load(folder / "text_emb" / "text_emb_1.npy", mmap_mode="r+")
    vectors[1234, 7] = np.nan
    vectors[1500] = np.inf
    vectors.flush()
    del vectors
    with pytest.raises(IngestError) as err:
        ingest(store, folder)
    message = str(err.value)
    assert "text_emb_1.npy" in message and "2 vector(s) with NaN or infinite values" in message
    assert "first at row 1,234" in message
    assert stored_parts(store) == {0: SMALL_ROWS}  # part 1 not kept at all


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from laionsearch import Store, ingest

    kill_at = int(sys.argv[3])
    original = Store.insert_arrow
    calls = 0

    def insert_then_maybe_die(self, table, data, settings=None):
        global calls
        original(self, table, data, settings)
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    Store.insert_arrow = insert_then_maybe_die
    ingest(Store(sys.argv[1]), sys.argv[2], batch_rows=500)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at, visible", [(2, {}), (6, {0: SMALL_ROWS})])
def test_killed_ingest_is_completed_exactly_once(kill_at, visible, parts_dir, tmp_path):
    db = tmp_path / "db"
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(db), str(parts_dir), str(kill_at)], capture_output=True, text=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # What a reader sees after the crash: only whole parts.
    seen = {r["part"]: r["rows"] for r in cli_json("info", db=db)}
    assert seen == visible
    out = run_cli("ingest", str(parts_dir), db=db).stderr
    assert f"ingested {2 - len(visible)} part(s)" in out
    (row,) = cli_json("sql", f"SELECT count() AS n, uniqExact(id) AS u FROM laion", db=db)
    assert row == {"n": 2 * SMALL_ROWS, "u": 2 * SMALL_ROWS}
    tables = cli_json("sql", "SELECT name FROM system.tables WHERE database = 'default'", db=db)
    assert [t["name"] for t in tables] == ["laion"]


def test_bfloat16_storage_rounds_and_still_searches(store, parts_dir):
    ingest(store, parts_dir, [0], storage="bfloat16")
    assert stored_storage(store) == "bfloat16"
    stored = vector_of(store, row_id(0, 100), "image")
    source = np.load(parts_dir / "img_emb" / "img_emb_0.npy")[100].astype(np.float32)
    np.testing.assert_array_equal(stored, to_bfloat16(source))  # rounded to nearest, not truncated by the engine
    assert not np.array_equal(stored, source)
    assert search_like(store, row_id(0, 100), k=1).column("id").to_pylist() == [row_id(0, 100)]
    with pytest.raises(ArgumentError, match="keeps embeddings as bfloat16"):
        ingest(store, parts_dir, [1], storage="float32")
    ingest(store, parts_dir, [1])  # no --storage: the table's own


def test_unknown_storage(store, parts_dir):
    with pytest.raises(ArgumentError, match="unknown storage 'float8'"):
        ingest(store, parts_dir, storage="float8")
    assert stored_parts(store) == {}


def test_a_disk_too_small_is_said_before_anything_is_written(store, parts_dir, monkeypatch):
    from laionsearch.ops import space

    monkeypatch.setattr(space, "free_bytes", lambda store: 5_000_000)
    with pytest.raises(IngestError) as err:
        ingest(store, parts_dir)
    message = str(err.value)
    assert "ingesting 2 part(s) needs about" in message and "which has 5.0 MB free" in message
    assert stored_parts(store) == {}
    monkeypatch.undo()
    assert ingest(store, parts_dir).rows == 2 * SMALL_ROWS

"""Vectors held in the engine's memory (``ops.held``): the same answers as the table, and never a stale copy."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from laionsearch import ArgumentError, hold_vectors, ingest, release_vectors, search
from laionsearch.ops import exact, held
from laionsearch.ops.filters import Filters

from .conftest import copy_parts, run_cli
from .test_cluster import one_shard_db
from .test_query import loaded, numpy_ids, rows  # noqa: F401 (fixture)

IN_MEMORY = "exact (dot product, in memory)"


def _pages(store, queries, column="image"):
    return [search(store, q, column=column, k=k, offset=offset, exact=True)
            for q in queries for k, offset in ((10, 0), (7, 13))]


def test_a_held_copy_gives_the_table_s_answers(loaded, parts_dir):
    ids, vectors, meta = rows(parts_dir)
    noise = np.random.default_rng(5).standard_normal((3, vectors.shape[1])).astype(np.float32)
    queries = vectors[[3, 250, 777]] + noise * 0.05
    before = {c: _pages(loaded, queries, c) for c in ("image", "text")}
    report = hold_vectors(loaded, "image")
    assert report.held.rows == len(ids) and report.bytes >= len(ids) * vectors.shape[1] * 2
    after = {c: _pages(loaded, queries, c) for c in ("image", "text")}
    for was, now in zip(before["image"], after["image"]):
        assert now.plan == IN_MEMORY
        assert now.column("id").to_pylist() == was.column("id").to_pylist()
        assert now.column("distance").to_pylist() == was.column("distance").to_pylist()
    assert after["image"][0].column("id").to_pylist() == numpy_ids(ids, vectors, queries[0], 10)
    assert all(p.plan == "exact (dot product)" for p in after["text"])  # only the column held is read there
    assert [p.column("id").to_pylist() for p in after["text"]] == [p.column("id").to_pylist() for p in before["text"]]
    # A filtered search takes the matching ids from the table and scores them in the copy.
    for filters in (Filters(nsfw=("UNLIKELY",)), Filters(min_width=600), Filters(min_width=10**6)):
        mask = np.isin(meta["NSFW"], list(filters.nsfw)) if filters.nsfw else \
            np.asarray(meta["original_width"]) >= filters.min_width
        found = search(loaded, queries[0], k=5, exact=True, filters=filters)
        assert found.column("id").to_pylist() == numpy_ids(ids, vectors, queries[0], 5, mask)
        assert found.plan.endswith("(dot product, in memory)") or not mask.any(), found.plan
    assert release_vectors(loaded, "image") and not release_vectors(loaded, "image")
    assert search(loaded, queries[0], k=10, exact=True).plan == "exact (dot product)"


def test_a_copy_the_table_moved_on_from_is_not_used(store, parts_dir, tmp_path):
    ingest(store, copy_parts(parts_dir, tmp_path / "first", numbers=(0,)))
    copy = hold_vectors(store, "image").held
    ingest(store, copy_parts(parts_dir, tmp_path / "second", numbers=(1,)))
    assert held.held_copy(store, "image") is None
    ids, vectors, _ = rows(parts_dir)
    found = search(store, vectors[-3], k=10, exact=True)  # a row of the part ingested after the copy
    assert found.plan == "exact (dot product)"
    assert found.column("id").to_pylist() == numpy_ids(ids, vectors, vectors[-3], 10)
    # Handed the old copy all the same (as a search that looked just before the ingest), the scan refuses it.
    params = {"k": 10, "offset": 0}
    assert exact.search_by_dot(store, "image", vectors[-3], "", "", params, "exact", copy) is None
    # And a copy dropped under a search (released, or replaced by another client of the server) is passed over.
    fresh = hold_vectors(store, "image").held
    release_vectors(store, "image")
    assert exact.search_by_dot(store, "image", vectors[-3], "", "", params, "exact", fresh) is None


def test_a_kept_copy_is_made_again_once_the_table_settles(store, parts_dir, tmp_path):
    ingest(store, copy_parts(parts_dir, tmp_path / "first", numbers=(0,)))
    hold_vectors(store, "image")
    stop, said = threading.Event(), []
    keeper = threading.Thread(target=held.keep_held, args=(store, ["image"], stop, 0.2), kwargs={"say": said.append})
    keeper.start()
    try:
        ingest(store, copy_parts(parts_dir, tmp_path / "second", numbers=(1,)))
        deadline = time.monotonic() + 60
        while not said and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        keeper.join()
    assert len(said) == 1 and said[0].startswith("image vectors held in memory again:"), said
    ids, vectors, _ = rows(parts_dir)
    found = search(store, vectors[-3], k=10, exact=True)
    assert found.plan == IN_MEMORY and found.column("id").to_pylist() == numpy_ids(ids, vectors, vectors[-3], 10)


def test_a_kept_copy_that_no_longer_fits_is_said_once(loaded, parts_dir, monkeypatch):
    hold_vectors(loaded, "image")
    monkeypatch.setattr(held, "free_memory", lambda store: 100 << 20)
    stop, said = threading.Event(), []
    keeper = threading.Thread(target=held.keep_held, args=(loaded, ["image"], stop, 0.1), kwargs={"say": said.append})
    keeper.start()
    try:
        loaded.execute(f"TRUNCATE TABLE {loaded.table(held.PREFIX + 'image')}")  # as by a restart
        time.sleep(1.5)
    finally:
        stop.set()
        keeper.join()
    assert len(said) == 1 and "could not be held again" in said[0] and "of memory" in said[0], said


def test_a_page_the_copy_cannot_prove_is_ranked_by_cosine_without_scanning_the_table(store, tmp_path, monkeypatch):
    from laionsearch import row_id
    from laionsearch.ops import search as searching

    from .test_exact import _part_with_lengths

    rng = np.random.default_rng(2)
    # As in test_exact: rows all but parallel, lengths 1 +- 0.9%, so that dot product and cosine disagree.
    base = rng.standard_normal(64).astype(np.float32)
    directions = base + 0.05 * rng.standard_normal((3000, 64)).astype(np.float32)
    vectors = _part_with_lengths(tmp_path, 1 + rng.uniform(-0.009, 0.009, 3000), seed=6, directions=directions)
    ingest(store, tmp_path)
    hold_vectors(store, "image")
    scans = []  # what each dot-product scan read: the copy, or None for the table

    def counted(*args, **kwargs):
        scans.append(args[7] if len(args) > 7 else kwargs.get("held"))
        return exact.search_by_dot(*args, **kwargs)

    monkeypatch.setattr(searching, "search_by_dot", counted)
    found = search(store, base, k=10, exact=True)
    ids = np.array([row_id(0, i) for i in range(3000)])
    assert found.column("id").to_pylist() == numpy_ids(ids, vectors, base, 10)
    assert found.plan == "exact"  # ranked by cosine distance
    assert [type(scan).__name__ for scan in scans] == ["Held"]  # the copy's scan only, not the table's too


def test_merges_keep_the_copy_and_deletes_do_not(loaded, parts_dir):
    ids, vectors, _ = rows(parts_dir)
    hold_vectors(loaded, "image")
    loaded.execute(f"OPTIMIZE TABLE {loaded.table('laion')} FINAL")
    assert search(loaded, vectors[9], k=5, exact=True).plan == IN_MEMORY
    loaded.execute(f"DELETE FROM {loaded.table('laion')} WHERE id = {int(ids[9])}")
    found = search(loaded, vectors[9], k=5, exact=True)
    assert found.plan == "exact (dot product)" and int(ids[9]) not in found.column("id").to_pylist()


def test_a_copy_emptied_as_by_a_restart_is_not_used(loaded, parts_dir):
    _, vectors, _ = rows(parts_dir)
    copy = hold_vectors(loaded, "image").held
    loaded.execute(f"TRUNCATE TABLE {loaded.table(held.PREFIX + 'image')}")
    assert held.held_copy(loaded, "image") is None
    assert search(loaded, vectors[1], k=3, exact=True).plan == "exact (dot product)"
    # Handed the emptied copy all the same, a filtered scan finds no rows and does not take that for the answer.
    params = {"k": 3, "offset": 0}
    filtered = "WHERE NSFW = 'UNLIKELY'"
    assert exact.search_by_dot(loaded, "image", vectors[1], filtered, "", params, "exact", copy) is None


def test_an_embedded_copy_ends_with_its_process(tmp_path, parts_dir):
    db = tmp_path / "store"
    run_cli("ingest", str(copy_parts(parts_dir, tmp_path / "parts", numbers=(0,))), db=db)
    script = ("import sys, numpy as np, laionsearch as ls; s = ls.Store(sys.argv[1]); "
              "{} print(ls.search(s, np.ones(ls.stored_dim(s), dtype=np.float32), k=3, exact=True).plan)")
    ran = [subprocess.run([sys.executable, "-c", script.format(step), str(db)], capture_output=True, text=True)
           for step in ("ls.hold_vectors(s, 'image');", "")]
    assert [r.stdout.strip() for r in ran] == [IN_MEMORY, "exact (dot product)"], [r.stderr for r in ran]


def test_holding_more_than_the_free_memory_is_refused(loaded, monkeypatch):
    monkeypatch.setattr(held, "free_memory", lambda store: 100 << 20)
    with pytest.raises(ArgumentError, match=r"takes ~.* of memory and the engine has ~"):
        hold_vectors(loaded, "image")
    assert not loaded.has_table(held.PREFIX + "image")


def test_holding_needs_rows_and_a_column(store):
    with pytest.raises(ArgumentError, match="no rows"):
        hold_vectors(store, "image")
    with pytest.raises(ArgumentError, match="unknown column 'caption'; choose one of: image, text"):
        hold_vectors(store, "caption")
    with pytest.raises(ArgumentError, match="unknown column 'caption'; choose one of: image, text"):
        release_vectors(store, "caption")


def test_a_store_without_measured_lengths_is_refused(loaded):
    loaded.execute(f"ALTER TABLE {loaded.table('laion')} MODIFY COMMENT ''")  # as a store made before
    with pytest.raises(ArgumentError, match="re-ingest the parts to hold them"):
        hold_vectors(loaded, "image")
    assert not loaded.has_table(held.PREFIX + "image")


def test_free_memory_is_known_here(store):
    free = held.free_memory(store)
    assert free is not None and 0 < free < 1 << 50


def test_serve_holds_while_it_serves_and_gives_the_memory_back(tmp_path, parts_dir):
    db = tmp_path / "store"
    run_cli("ingest", str(copy_parts(parts_dir, tmp_path / "parts", numbers=(0,))), db=db)
    served = run_cli("serve", "--hold-vectors", "image", "--get", "/api/health", db=db)
    assert "image vectors held in memory:" in served.stderr
    tables = run_cli("sql", "SELECT name FROM system.tables WHERE database = currentDatabase()", db=db).stdout
    assert "laion_held_image" not in tables and "laion" in tables


def test_a_cluster_store_is_refused(tmp_path):
    done = run_cli("serve", "--hold-vectors", "image", "--get", "/api/health", db=one_shard_db(tmp_path), check=False)
    assert done.returncode == 1
    assert "each shard would need its own copy" in done.stderr and "Traceback" not in done.stderr

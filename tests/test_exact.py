"""Exact search by dot product (``ops.exact``): the cosine ranking itself, on float32 and bfloat16 stores."""

import numpy as np
import pytest
import torch

from laionsearch import ArgumentError, ingest, row_id, search
from laionsearch.ops import exact
from laionsearch.schema import create_table_sql, stored_origin, stored_storage, to_bfloat16

from .test_query import loaded, numpy_ids, rows  # noqa: F401 (fixture)

def _part_with_lengths(folder, lengths, seed=4, directions=None):
    """Part 0 of 3,000 rows whose image vectors have the given lengths (and directions; the text vectors unit)."""
    from laionsearch import SynthSpec, synth_parts

    synth_parts(folder, [0], SynthSpec(rows=3000, dim=64, seed=seed))
    path = folder / "img_emb" / "img_emb_0.npy"
    vectors = np.load(path).astype(np.float32) if directions is None else directions
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) * lengths[:, None]
    np.save(path, vectors.astype(np.float16))
    return np.load(path).astype(np.float32)


@pytest.mark.parametrize("spread, dot", [(0.0, True), (0.009, True), (0.5, False)])
def test_exact_search_by_dot_product_gives_the_cosine_answer(store, tmp_path, spread, dot):
    rng = np.random.default_rng(1)
    vectors = _part_with_lengths(tmp_path, 1 + rng.uniform(-spread, spread, 3000))
    ingest(store, tmp_path)
    assert stored_origin(store)["unit_error"]["image"] == pytest.approx(
        np.abs(np.linalg.norm(vectors, axis=1) - 1).max(), abs=1e-6)
    ids = np.array([row_id(0, i) for i in range(3000)])
    for i in range(8):
        query = vectors[i * 300] + rng.standard_normal(64).astype(np.float32) * 0.02
        for k, offset in ((10, 0), (5, 20)):
            found = search(store, query, k=k, offset=offset, exact=True)
            assert found.column("id").to_pylist() == numpy_ids(ids, vectors, query, offset + k)[offset:]
            dist = 1 - vectors[np.searchsorted(ids, found.column("id").to_numpy())] @ (query / np.linalg.norm(query)) \
                / np.linalg.norm(vectors[np.searchsorted(ids, found.column("id").to_numpy())], axis=1)
            np.testing.assert_allclose(found.column("distance").to_numpy(), dist, atol=1e-5)
            assert found.plan.endswith("(dot product)") == dot, found.plan


def test_without_a_measured_length_exact_search_stays_cosine(loaded, parts_dir):
    ids, vectors, _ = rows(parts_dir)
    assert search(loaded, vectors[5], k=5, exact=True).plan == "exact (dot product)"
    loaded.execute(f"ALTER TABLE {loaded.table('laion')} MODIFY COMMENT ''")  # as a store made before
    found = search(loaded, vectors[5], k=5, exact=True)
    assert found.plan == "exact" and found.column("id").to_pylist() == numpy_ids(ids, vectors, vectors[5], 5)


def test_a_page_the_candidates_cannot_prove_falls_back_to_cosine(store, tmp_path):
    rng = np.random.default_rng(2)
    # Rows all but parallel, lengths 1 +- 0.9%: the dot product ranks them by length, cosine by direction.
    base = rng.standard_normal(64).astype(np.float32)
    directions = base + 0.05 * rng.standard_normal((3000, 64)).astype(np.float32)
    vectors = _part_with_lengths(tmp_path, 1 + rng.uniform(-0.009, 0.009, 3000), seed=6, directions=directions)
    ingest(store, tmp_path)
    ids = np.array([row_id(0, i) for i in range(3000)])
    found = search(store, base, k=10, exact=True)
    assert found.column("id").to_pylist() == numpy_ids(ids, vectors, base, 10)
    assert found.plan == "exact"  # the candidates could not prove the page: ranked by cosine distance
    easy = search(store, vectors[7], k=1, exact=True)
    assert easy.column("id").to_pylist() == [row_id(0, 7)]


def _mapped_reads(store) -> int:
    found = store.query("SELECT value FROM system.events WHERE event = 'CreatedReadBufferMMap'").column("value")
    return int(found[0].as_py()) if len(found) else 0


def test_exact_search_maps_large_column_files_and_answers_the_same(store, tmp_path, monkeypatch):
    vectors = _part_with_lengths(tmp_path, np.ones(3000))
    ingest(store, tmp_path)
    ids = np.array([row_id(0, i) for i in range(3000)])
    copied = [search(store, vectors[i], k=10, exact=True) for i in (3, 1500)]  # test files are under 16 MiB
    monkeypatch.setattr(exact, "MMAP_MIN_BYTES", 1)  # map every file
    before = _mapped_reads(store)
    for i, was in zip((3, 1500), copied):
        found = _same_as_cosine(store, vectors[i], monkeypatch, k=10)  # the dot-product scan, then cosine alone
        assert found.column("id").to_pylist() == was.column("id").to_pylist() == numpy_ids(ids, vectors, vectors[i], 10)
        assert found.column("distance").to_pylist() == was.column("distance").to_pylist()
    assert _mapped_reads(store) > before


def _stored_vectors(store):
    table = store.query(f"SELECT CAST(image_embedding AS Array(Float32)) AS v FROM {store.table('laion')} ORDER BY id")
    return np.array(table.column("v").to_pylist(), np.float32)


def _same_as_cosine(store, query, monkeypatch, **options):
    """The exact search's page, checked identical (ids and distances) to ranking the whole table by cosine."""
    found = search(store, query, exact=True, **options)
    with monkeypatch.context() as m:
        m.setattr(exact, "MAX_UNIT_ERROR", -1.0)  # no length is within it: cosine distance over the table
        cosine = search(store, query, exact=True, **options)
    assert cosine.plan.startswith("exact") and "dot product" not in cosine.plan
    assert found.column("id").to_pylist() == cosine.column("id").to_pylist()
    assert found.column("distance").to_pylist() == cosine.column("distance").to_pylist()
    return found


def test_bfloat16_store_scans_with_a_bfloat16_query_and_gives_the_cosine_answer(store, tmp_path, monkeypatch):
    from laionsearch import Filters

    vectors = _part_with_lengths(tmp_path, np.ones(3000))
    ingest(store, tmp_path, storage="bfloat16")
    stored = _stored_vectors(store)
    np.testing.assert_array_equal(stored, to_bfloat16(vectors))
    lengths = np.linalg.norm(stored.astype(np.float64), axis=1)
    assert stored_origin(store)["unit_error"]["image"] == pytest.approx(np.abs(lengths - 1).max(), abs=1e-6)
    ids = np.array([row_id(0, i) for i in range(3000)])
    rng = np.random.default_rng(3)
    for i in range(6):
        query = vectors[i * 500] + rng.standard_normal(64).astype(np.float32) * 0.05
        for k, offset in ((10, 0), (5, 20)):
            found = _same_as_cosine(store, query, monkeypatch, k=k, offset=offset)
            assert found.plan == "exact (dot product)"
            assert found.column("id").to_pylist() == numpy_ids(ids, stored, query, offset + k)[offset:]
    odd = Filters(min_similarity=0.3)
    assert _same_as_cosine(store, vectors[9], monkeypatch, k=10, filters=odd).plan == "exact (dot product)"


def test_a_bfloat16_store_made_by_an_older_version_counts_the_engines_truncation(store, tmp_path, monkeypatch):
    vectors = _part_with_lengths(tmp_path, np.ones(3000))
    ddl = create_table_sql(store.table("laion"), "bfloat16")
    store.execute(ddl.replace("Array(BFloat16) CODEC(NONE)", "Array(BFloat16)"))  # LZ4, as older versions made it
    ingest(store, tmp_path)
    assert stored_storage(store) == "bfloat16-lz4"
    recorded = stored_origin(store)["unit_error"]["image"]
    assert exact.unit_error(store, "image", "bfloat16-lz4") == pytest.approx(recorded + 2**-8)
    ids = np.array([row_id(0, i) for i in range(3000)])
    found = _same_as_cosine(store, vectors[11], monkeypatch, k=10)
    assert found.column("id").to_pylist() == numpy_ids(ids, _stored_vectors(store), vectors[11], 10)
    with pytest.raises(ArgumentError, match="unknown storage 'bfloat16-lz4'"):
        ingest(store, tmp_path, storage="bfloat16-lz4")  # recognised, no longer offered


def test_rounding_to_bfloat16_is_to_nearest_and_the_engine_keeps_it(embedded_store):
    values = np.random.default_rng(5).standard_normal(4096).astype(np.float32) * 10.0 ** np.arange(-4, 4).repeat(512)
    rounded = to_bfloat16(values)
    np.testing.assert_array_equal(rounded, torch.from_numpy(values).to(torch.bfloat16).float().numpy())
    assert np.all(np.abs(rounded - values) <= np.abs(values) * 2**-8)
    from laionsearch.engine.params import vector_hex, vector_sql

    back = embedded_store.query(
        f"SELECT CAST(CAST({vector_sql('v')} AS Array(BFloat16)) AS Array(Float32)) AS v", {"v": vector_hex(rounded)})
    np.testing.assert_array_equal(np.array(back.column("v")[0].as_py(), np.float32), rounded)


@pytest.mark.parametrize("error", [0.0, 1e-3, 0.009])
def test_similarity_bounds_hold_the_true_cosine(error):
    rng = np.random.default_rng(7)
    dim = 512
    vectors = rng.standard_normal((5000, dim)).astype(np.float32)
    vectors[:50] = vectors[0] * 0.99 + vectors[:50] * 0.01  # some rows close to each other and to the query
    vectors *= (1 + rng.uniform(-error, error, 5000)).astype(np.float32)[:, None] / np.linalg.norm(vectors, axis=1,
                                                                                                   keepdims=True)
    query = vectors[0] / np.linalg.norm(vectors[0])
    for scanned in (query, to_bfloat16(query)):
        dots = (vectors @ scanned).astype(np.float64)  # float32 arithmetic, as the engine's
        truth = (vectors.astype(np.float64) @ query.astype(np.float64)) / np.linalg.norm(vectors.astype(np.float64),
                                                                                        axis=1)
        measured = float(np.abs(np.linalg.norm(vectors.astype(np.float64), axis=1) - 1).max())
        lower, upper = exact.similarity_bounds(dots, measured, float(np.linalg.norm(query - scanned)), dim)
        assert np.all(lower <= truth) and np.all(truth <= upper)
        assert np.max(upper - lower) < 4 * (error + float(np.linalg.norm(query - scanned))) + 1e-3  # and tight

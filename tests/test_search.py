import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from laionsearch import ArgumentError, QueryError, StoreError, ingest, load_vector, row_id, search, search_like

from .conftest import SMALL_ROWS


@pytest.fixture
def loaded(store, parts_dir):
    ingest(store, parts_dir)
    return store


def source(parts_dir, column="img_emb"):
    """All rows of both parts as (ids, float32 vectors, NSFW tags, similarities), like numpy would see them."""
    ids, vecs, nsfw, sim = [], [], [], []
    for part in (0, 1):
        vecs.append(np.load(parts_dir / column / f"{column}_{part}.npy").astype(np.float32))
        meta = pq.read_table(parts_dir / "metadata" / f"metadata_{part}.parquet")
        nsfw += [v or "" for v in meta.column("NSFW").to_pylist()]
        sim.append(meta.column("similarity").to_numpy().astype(np.float32))
        ids += [row_id(part, i) for i in range(SMALL_ROWS)]
    return np.array(ids), np.vstack(vecs), np.array(nsfw), np.concatenate(sim)


def numpy_top_k(vectors, query, k, mask=None):
    dist = 1 - (vectors @ query) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    if mask is not None:
        dist = np.where(mask, dist, np.inf)
    order = np.argsort(dist, kind="stable")[:k]
    return order, dist[order]


@pytest.mark.parametrize("column, folder", [("image", "img_emb"), ("text", "text_emb")])
def test_exact_search_equals_numpy_brute_force(loaded, parts_dir, column, folder):
    ids, vectors, _, _ = source(parts_dir, folder)
    rng = np.random.default_rng(3)
    for _ in range(5):
        query = rng.standard_normal(512).astype(np.float32)
        query = vectors[rng.integers(len(vectors))] + 0.05 * query / np.linalg.norm(query)
        result = search(loaded, query, column=column, k=10)
        order, dist = numpy_top_k(vectors, query, 10)
        assert result.column("id").to_pylist() == ids[order].tolist()
        np.testing.assert_allclose(result.column("distance").to_numpy(), dist, atol=1e-5)


def test_filters_are_applied(loaded, parts_dir):
    ids, vectors, nsfw, sim = source(parts_dir)
    query = vectors[17]
    result = search(loaded, query, k=20, nsfw=["UNSURE", "nsfw"], min_similarity=0.4)
    assert result.num_rows == 20
    assert set(result.column("NSFW").to_pylist()) <= {"UNSURE", "NSFW"}
    assert min(result.column("similarity").to_pylist()) >= np.float32(0.4)
    mask = np.isin(nsfw, ["UNSURE", "NSFW"]) & (sim >= np.float32(0.4))
    order, _ = numpy_top_k(vectors, query, 20, mask)
    assert result.column("id").to_pylist() == ids[order].tolist()


def test_like_id_returns_that_row_first(loaded):
    for rid in (row_id(0, 12), row_id(1, 1999)):
        result = search_like(loaded, rid, k=3)
        assert result.column("id")[0].as_py() == rid
        assert result.column("distance")[0].as_py() == pytest.approx(0.0, abs=1e-6)
        assert result.column_names == ["id", "url", "caption", "NSFW", "similarity", "distance"]


def test_a_result_is_its_arrow_table_and_an_image_grid_in_notebooks(loaded):
    import pyarrow as pa

    result = search_like(loaded, row_id(0, 12), k=7, exact=True)
    assert result.plan.startswith("exact") and len(result) == 7 and pa.table(result).equals(result.table)
    assert result.to_pandas()["id"].tolist() == result.column("id").to_pylist()
    html = result._repr_html_()
    assert html.count("<img ") == 7 and html.count("<figure") == 7
    assert "https://images.example.org/laion/0/12.jpg" in html and "distance 0.0000" in html
    # Captions are text, never markup: a caption with markup shows escaped.
    hostile = result.table.set_column(2, "caption", pa.array(["<script>alert(1)</script>"] * 7))
    assert "<script>" not in type(result)(hostile)._repr_html_()


def test_bad_requests_are_clear(loaded, store_path):
    with pytest.raises(QueryError, match="no row with id 42424242"):
        search_like(loaded, 42424242)
    with pytest.raises(ArgumentError, match="3 dimensions.*512-d"):
        search(loaded, [0.1, 0.2, 0.3])
    with pytest.raises(ArgumentError, match="not all zeros"):
        search(loaded, np.zeros(512))
    with pytest.raises(ArgumentError, match="k must be at least 1"):
        search(loaded, np.ones(512), k=0)
    with pytest.raises(ArgumentError, match="unknown column"):
        search(loaded, np.ones(512), column="audio")
    with pytest.raises(ArgumentError, match="unknown NSFW value"):
        search(loaded, np.ones(512), nsfw=["MAYBE"])


def test_empty_store_says_to_ingest(store):
    with pytest.raises(StoreError, match="laionsearch ingest"):
        search(store, np.ones(512))


def test_load_vector_reads_json_and_npy(tmp_path):
    vec = np.linspace(-1, 1, 8, dtype=np.float32)
    (tmp_path / "v.json").write_text(json.dumps(vec.tolist()))
    np.save(tmp_path / "v.npy", vec.reshape(1, 8))
    assert np.array_equal(load_vector(tmp_path / "v.json"), vec)
    assert np.array_equal(load_vector(tmp_path / "v.npy"), vec)
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(ArgumentError, match="bad.json"):
        load_vector(tmp_path / "bad.json")
    with pytest.raises(ArgumentError, match="no such file"):
        load_vector(tmp_path / "missing.json")

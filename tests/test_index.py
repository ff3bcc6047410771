"""HNSW indexes: creation, status, ANN search, filters under ANN, and the guide's query shape."""

import json
import signal
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pyarrow.parquet as pq
import pytest

from laionsearch import ArgumentError, Filters, IndexingError, Store, SynthSpec, ingest, row_id, search, synth_parts
from laionsearch.ops.evaluate import evaluate, exact_top_k, sample_queries
from laionsearch.ops.index import create_index, drop_index, index_status
from laionsearch.ops.results import plan_of
from laionsearch.ops.search import plan_filtered

from .conftest import run_cli

ROWS = 20_000


@pytest.fixture(scope="module")
def big_parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parts20k")
    synth_parts(folder, [0], SynthSpec(rows=ROWS, seed=11))
    return folder


@pytest.fixture(scope="module")
def indexed(backend, big_parts):
    """20,000 rows with the guide's default index on image embeddings, on each backend."""
    store = Store(backend, database=f"ix_{uuid.uuid4().hex[:8]}")
    ingest(store, big_parts)
    create_index(store, "image")
    return store


def explain(store, sql, params):
    return "\n".join(store.query("EXPLAIN indexes = 1 " + sql, params).column(0).to_pylist())


@pytest.mark.slow
def test_default_index_reaches_recall(indexed):
    queries = sample_queries(indexed, "image", 50, seed=3)
    truth = exact_top_k(indexed, "image", queries, 10)
    recall = np.mean([
        len(np.intersect1d(search(indexed, q, k=10).column("id").to_numpy(), truth[i])) / 10
        for i, q in enumerate(queries)
    ])
    assert recall >= 0.95


def test_explain_shows_the_index_for_the_guide_query_and_parameters(indexed):
    vector = sample_queries(indexed, "image", 1)[0]
    guide = ("SELECT url, caption FROM {t} ORDER BY cosineDistance(image_embedding, {{target:Array(Float32)}}) LIMIT 10"
             .format(t=indexed.table("laion")))
    assert "Name: image_index" in explain(indexed, guide, {"target": vector})
    ours = ("SELECT id, cosineDistance(image_embedding, {{target:Array(Float32)}}) AS distance FROM {t} "
            "ORDER BY distance ASC LIMIT {{k:UInt32}}").format(t=indexed.table("laion"))
    assert "Name: image_index" in explain(indexed, ours, {"target": vector, "k": 10})
    assert plan_of(search(indexed, vector)) == "ann"
    assert plan_of(search(indexed, vector, exact=True)) == "exact (dot product)"  # unit vectors: see ops.exact
    assert plan_of(search(indexed, vector, column="text")).startswith("exact")  # no text index


def test_exact_flag_equals_numpy(indexed, big_parts):
    vectors = np.load(big_parts / "img_emb" / "img_emb_0.npy").astype(np.float32)
    query = sample_queries(indexed, "image", 1, seed=9)[0]
    dist = 1 - vectors @ query / np.linalg.norm(vectors, axis=1)
    expected = np.argsort(dist, kind="stable")[:10]
    assert search(indexed, query, k=10, exact=True).column("id").to_pylist() == expected.tolist()


def test_filter_keeping_one_percent_still_returns_k_right_rows(indexed, big_parts):
    sim = pq.read_table(big_parts / "metadata" / "metadata_0.parquet").column("similarity").to_numpy()
    threshold = float(np.nanquantile(sim, 0.99))  # ~1% of rows pass
    vectors = np.load(big_parts / "img_emb" / "img_emb_0.npy").astype(np.float32)
    matching = np.flatnonzero(np.nan_to_num(sim.astype(np.float32), nan=-1) >= np.float32(threshold))
    assert 150 <= len(matching) <= 250
    for query in sample_queries(indexed, "image", 5, seed=4):
        result = search(indexed, query, k=10, min_similarity=threshold)
        assert result.num_rows == 10, plan_of(result)
        assert all(s >= np.float32(threshold) for s in result.column("similarity").to_pylist())
        dist = 1 - vectors[matching] @ query / np.linalg.norm(vectors[matching], axis=1)
        best = {row_id(0, int(i)) for i in matching[np.argsort(dist)[:10]]}
        assert len(best & set(result.column("id").to_pylist())) >= 9


def test_a_rare_filter_ranks_its_matches_by_cosine_in_one_statement(indexed, big_parts):
    """Prefiltering 0.3% of rows skips the dot-product scan (its second statement costs more than it saves);
    --exact with the same filter, selectivity unknown, scans by dot product; both give numpy's rows."""
    sim = pq.read_table(big_parts / "metadata" / "metadata_0.parquet").column("similarity").to_numpy()
    threshold = float(np.nanquantile(sim, 0.997))
    vectors = np.load(big_parts / "img_emb" / "img_emb_0.npy").astype(np.float32)
    matching = np.flatnonzero(np.nan_to_num(sim.astype(np.float32), nan=-1) >= np.float32(threshold))
    query = sample_queries(indexed, "image", 1, seed=6)[0]
    dist = 1 - vectors[matching] @ query / np.linalg.norm(vectors[matching], axis=1)
    expected = [row_id(0, int(i)) for i in matching[np.argsort(dist, kind="stable")[:10]]]
    planned = search(indexed, query, k=10, min_similarity=threshold)
    assert plan_of(planned).startswith("exact-prefilter (selectivity") and "dot product" not in plan_of(planned)
    forced = search(indexed, query, k=10, min_similarity=threshold, exact=True)
    assert plan_of(forced) == "exact (dot product)"
    assert planned.column("id").to_pylist() == forced.column("id").to_pylist() == expected


@pytest.mark.slow
def test_every_metadata_filter_near_one_percent_returns_k_right_rows_under_ann(indexed, big_parts):
    """Each new filter alone and in combination, kept to ~1% of rows: k rows, equal to exact filtered search."""
    meta = pq.read_table(big_parts / "metadata" / "metadata_0.parquet")
    width = meta.column("original_width").to_numpy()
    height = meta.column("original_height").to_numpy()
    licence = np.array(meta.column("LICENSE").to_pylist())
    ratio = width / height
    wide = float(np.quantile(width, 0.99))
    low, high = np.quantile(ratio, [0.45, 0.55])  # 10% of rows, and 10% have the rarer licence
    tall = int(np.quantile(height, 0.9))
    a0, a1 = np.quantile(ratio[height >= tall], [0.4, 0.5])  # a tenth of the tallest tenth
    cases = [
        (Filters(min_width=int(wide)), width >= int(wide)),
        (Filters(licenses=("CC-BY 4.0",), aspect=(float(low), float(high))),
         (licence == "CC-BY 4.0") & (ratio >= low) & (ratio <= high)),
        (Filters(min_height=tall, url_domain="example.org", aspect=(float(a0), float(a1))),
         (height >= tall) & (ratio >= a0) & (ratio <= a1)),
    ]
    vectors = np.load(big_parts / "img_emb" / "img_emb_0.npy").astype(np.float32)
    for filters, mask in cases:
        matching = np.flatnonzero(mask)
        assert 60 <= len(matching) <= 600, (filters, len(matching))
        for query in sample_queries(indexed, "image", 3, seed=8):
            result = search(indexed, query, k=10, filters=filters)
            assert result.num_rows == 10, plan_of(result)
            exact = search(indexed, query, k=10, filters=filters, exact=True).column("id").to_pylist()
            dist = 1 - vectors[matching] @ query / np.linalg.norm(vectors[matching], axis=1)
            assert exact == [row_id(0, int(i)) for i in matching[np.argsort(dist, kind="stable")[:10]]]
            assert len(set(exact) & set(result.column("id").to_pylist())) >= 9, (filters, plan_of(result))


def test_filter_plan_rule():
    assert plan_filtered(0.5) == 8
    assert plan_filtered(0.05) == 80
    assert plan_filtered(0.01) == 400
    assert plan_filtered(0.0025) is None  # below 0.5%: exact over the matching rows
    assert plan_filtered(0.0) is None
    assert plan_filtered(0.05, k=250) == 80 and plan_filtered(0.05, k=251) is None  # over 20,000 candidates


def test_common_filter_uses_postfilter(indexed):
    query = sample_queries(indexed, "image", 1, seed=5)[0]
    result = search(indexed, query, k=10, nsfw=["UNLIKELY"])
    assert plan_of(result).startswith("ann-postfilter")
    assert result.num_rows == 10 and set(result.column("NSFW").to_pylist()) == {"UNLIKELY"}


def test_warming_loads_every_graph_into_the_cache(indexed):
    from laionsearch.ops.indexcache import cache_use, warm

    warmed = warm(indexed)
    (status,) = index_status(indexed)
    # The cache is the engine's, shared by every store of the process: it holds at least this index.
    assert warmed.cached >= 0.9 * status.bytes_in_memory
    assert cache_use(indexed).size == 5 * 2**30  # the engine's default


def test_rescoring_lifts_a_coarse_index(store, big_parts):
    ingest(store, big_parts)
    create_index(store, "image", quantization="b1", m=16, ef_construction=64)
    queries = sample_queries(store, "image", 30, seed=4)
    truth = exact_top_k(store, "image", queries, 10)

    def recall(**options):
        return np.mean([len(np.intersect1d(search(store, q, k=10, **options).column("id").to_numpy(), truth[i])) / 10
                        for i, q in enumerate(queries)])

    plain, rescored = recall(), recall(rescore=16)
    assert rescored >= plain + 0.1, (plain, rescored)  # binary codes alone rank poorly
    assert plan_of(search(store, queries[0], k=10, rescore=16)) == "ann-rescored x16"
    with pytest.raises(ArgumentError, match="rescore must be between 1 and 100"):
        search(store, queries[0], k=10, rescore=0)


def test_k_above_the_engine_limit_keeps_using_the_index(indexed):
    query = sample_queries(indexed, "image", 1, seed=6)[0]
    result = search(indexed, query, k=1500, ef=2000)
    assert result.num_rows == 1500 and plan_of(result) == "ann"
    sql = ("SELECT id, cosineDistance(image_embedding, {{target:Array(Float32)}}) AS distance FROM {t} "
           "ORDER BY distance ASC LIMIT 1500 SETTINGS max_limit_for_vector_search_queries = 1500"
           ).format(t=indexed.table("laion"))
    assert "Name: image_index" in explain(indexed, sql, {"target": query})


def test_status_and_new_parts_are_indexed(store, parts_dir):
    ingest(store, parts_dir, [0])
    create_index(store, "text", m=8, ef_construction=32)
    (status,) = index_status(store)
    assert status.name == "text_index" and status.column == "text"
    assert status.definition == "vector_similarity('hnsw', 'cosineDistance', 512, 'bf16', 8, 32)"
    assert status.parts_indexed == status.parts_total >= 1 and status.bytes_on_disk > 0
    ingest(store, parts_dir, [1])  # arrives after the index exists: one data part, its graph built
    (status,) = index_status(store)
    assert status.parts_indexed == status.parts_total == 2
    drop_index(store, "text")
    assert index_status(store) == []


def test_bad_index_requests(store, parts_dir):
    with pytest.raises(IndexingError, match="holds no rows"):
        create_index(store, "image")
    ingest(store, parts_dir, [0])
    with pytest.raises(ArgumentError, match="unknown column"):
        create_index(store, "audio")
    with pytest.raises(ArgumentError, match="unknown quantization"):
        create_index(store, "image", quantization="f8")
    with pytest.raises(ArgumentError, match="--m must be"):
        create_index(store, "image", m=0)
    with pytest.raises(IndexingError, match="there is no index"):
        drop_index(store, "image")
    create_index(store, "image", m=8, ef_construction=16)
    with pytest.raises(IndexingError, match="exists already"):
        create_index(store, "image", m=8)
    with pytest.raises(ArgumentError, match="ef must be"):
        search(store, np.ones(512), ef=0)


def test_eval_reports_recall_per_ef(indexed):
    rows = evaluate(indexed, queries=20, k=10, efs=[16, 128], exact_queries=3)
    assert [r.setting for r in rows] == ["ef=16", "ef=128", "exact"]
    assert rows[-1].recall == 1.0
    assert rows[1].recall >= 0.95 and rows[1].recall >= rows[0].recall - 0.05
    assert all(0 < r.p50_ms <= r.p95_ms <= r.p99_ms and r.qps > 0 for r in rows)


KILLED_IN_BUILD = textwrap.dedent(
    """
    import os, signal, sys
    from laionsearch import Store
    from laionsearch.ops import index

    # SIGKILL right after the build was started: the engine has the mutation, nobody follows it.
    index._follow = lambda store, name, progress: os.kill(os.getpid(), signal.SIGKILL)
    index.create_index(Store(sys.argv[1]), "image", m=32, ef_construction=128)
    """
)


@pytest.mark.slow
def test_a_build_killed_midway_is_reported_then_finished_or_cancelled(big_parts, tmp_path):
    db = tmp_path / "db"
    run_cli("ingest", str(big_parts), db=db)

    def kill_a_build():
        proc = subprocess.run([sys.executable, "-c", KILLED_IN_BUILD, str(db)], capture_output=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL

    kill_a_build()
    status = run_cli("index", "status", "--format", "json", db=db)
    assert json.loads(status.stdout)[0]["state"] == "interrupted"
    assert "`laionsearch index create --column image` finishes it" in status.stderr
    hits = json.loads(run_cli("search", "--like-id", "7", "-k", "3", "--format", "json", db=db).stdout)
    assert hits[0]["id"] == 7 and len(hits) == 3
    dropped = run_cli("index", "drop", db=db)
    assert "dropped image_index (cancelled its unfinished build)" in dropped.stderr
    assert json.loads(run_cli("index", "status", "--format", "json", db=db).stdout) == []

    kill_a_build()
    created = run_cli("index", "create", db=db)
    assert "finishing the interrupted build of image_index" in created.stderr and "built image_index" in created.stderr
    (row,) = json.loads(run_cli("index", "status", "--format", "json", db=db).stdout)
    assert (row["state"], row["parts_indexed"], row["parts_total"]) == ("built", 1, 1)
    assert "'bf16', 32, 128)" in row["definition"]  # the interrupted build's own parameters


def test_an_index_that_would_not_fit_is_refused_before_building(store, parts_dir, monkeypatch):
    from laionsearch.ops import space

    ingest(store, parts_dir)
    monkeypatch.setattr(space, "free_bytes", lambda store: 1_000_000)
    with pytest.raises(IndexingError, match=r"building image_index needs about .* which has 1.0 MB free"):
        create_index(store, "image", m=8, ef_construction=16)
    assert index_status(store) == []
    # 4,000 rows x (512 x 2 + 8 x 8) bytes = 4.35 MB, plus the margin
    assert space.index_bytes(4000, 512, "bf16", 8) == 4_352_000

"""One query model: weighted positive and negative terms, and every metadata filter, checked against numpy."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from laionsearch import ArgumentError, Filters, Query, ingest, row_id, search, search_like
from laionsearch.ops import query as q
from laionsearch.ops.filters import parse_aspect
from laionsearch.ops.query import combine, parse_weighted

from .conftest import SMALL_ROWS, run_cli


@pytest.fixture
def loaded(store, parts_dir):
    ingest(store, parts_dir)
    return store


def rows(parts_dir):
    """Every row of both parts as numpy sees them: ids, image vectors and the metadata columns."""
    vectors = np.vstack([np.load(parts_dir / "img_emb" / f"img_emb_{n}.npy").astype(np.float32) for n in (0, 1)])
    meta = {}
    for n in (0, 1):
        table = pq.read_table(parts_dir / "metadata" / f"metadata_{n}.parquet")
        for name in ("original_width", "original_height", "LICENSE", "url", "similarity", "NSFW"):
            meta.setdefault(name, []).extend(table.column(name).to_pylist())
    ids = np.array([row_id(n, i) for n in (0, 1) for i in range(SMALL_ROWS)])
    return ids, vectors, {k: np.array(v) for k, v in meta.items()}


def numpy_ids(ids, vectors, query, k, mask=None):
    unit = query / np.linalg.norm(query)
    dist = 1 - vectors @ unit / np.linalg.norm(vectors, axis=1)
    if mask is not None:
        dist = np.where(mask, dist, np.inf)
    order = np.argsort(dist, kind="stable")[:k]
    return ids[order[np.isfinite(dist[order])]].tolist()


def unit(v):
    return v / np.linalg.norm(v)


# ---- the query model -------------------------------------------------------------------------------------------

def test_terms_are_unit_vectors_summed_by_weight():
    a, b = np.array([3.0, 0, 0]), np.array([0, 0.5, 0])
    np.testing.assert_allclose(combine([(1, a), (1, b)], 3), unit(np.array([1, 1, 0])), atol=1e-6)
    np.testing.assert_allclose(combine([(2, a), (-1, b)], 3), unit(np.array([2, -1, 0])), atol=1e-6)
    with pytest.raises(ArgumentError, match="cancel out"):
        combine([(1, a), (-1, a * 7)], 3)
    with pytest.raises(ArgumentError, match="4 dimensions"):
        combine([(1, np.ones(4))], 3)
    with pytest.raises(ArgumentError, match="not all zeros"):
        combine([(1, np.zeros(3))], 3)


@pytest.mark.parametrize("value, parsed", [
    ("a dog", (1.0, "a dog")), ("0.5*a watercolour", (0.5, "a watercolour")), ("2 * cats", (2.0, "cats")),
    (".25*x", (0.25, "x")), ("a*b", (1.0, "a*b")), ("3:10 to Yuma", (1.0, "3:10 to Yuma")),
])
def test_cli_weights(value, parsed):
    assert parse_weighted(value) == parsed


def test_bad_queries_are_refused():
    with pytest.raises(ArgumentError, match="positive term"):
        Query((), (q.text("x"),))
    with pytest.raises(ArgumentError, match="weight"):
        q.text("x", weight=0)
    with pytest.raises(ArgumentError, match="at most 16"):
        Query(tuple(q.row(i) for i in range(17)))
    with pytest.raises(ArgumentError, match="Terms"):
        Query(("a dog",))
    assert str(Query.of(q.text("sea"), q.row(3, 0.5), negative=[q.text("cartoon")])) == \
        "'sea' + 0.5*row 3 - 'cartoon'"


def test_one_row_term_is_search_like(loaded):
    alone = search(loaded, Query.of(q.row(12)), k=10, exact=True).column("id").to_pylist()
    assert alone == search_like(loaded, 12, k=10, exact=True).column("id").to_pylist() and alone[0] == 12


def test_mixed_terms_search_their_weighted_sum(loaded, parts_dir):
    ids, vectors, _ = rows(parts_dir)
    a, b = vectors[5], vectors[SMALL_ROWS + 40]
    got = search(loaded, Query.of(q.row(5), q.vector(b * 3, weight=2)), k=15, exact=True).column("id").to_pylist()
    assert got == numpy_ids(ids, vectors, unit(a) + 2 * unit(b), 15)


def test_negative_terms_move_results_away(loaded, parts_dir):
    ids, vectors, _ = rows(parts_dir)
    a = vectors[7]
    # The row least like a's top neighbours' centre that is still close to a: a direction to move away from.
    near = numpy_ids(ids, vectors, a, 50)
    away = vectors[np.searchsorted(ids, near[25])]
    plain = search(loaded, Query.of(q.row(7)), k=20, exact=True).column("id").to_pylist()
    moved = search(loaded, Query.of(q.row(7), negative=[q.row(int(near[25]))]), k=20, exact=True)
    moved_ids = moved.column("id").to_pylist()
    assert moved_ids == numpy_ids(ids, vectors, unit(a) - unit(away), 20)

    def closeness(found):
        return float(np.mean([unit(vectors[np.searchsorted(ids, i)]) @ unit(away) for i in found]))

    assert closeness(moved_ids) < closeness(plain) - 0.1
    assert int(near[25]) not in moved_ids


# ---- filters ------------------------------------------------------------------------------------------------------

FILTERS = {
    "min_width": (Filters(min_width=1500), lambda m: m["original_width"] >= 1500),
    "min_height": (Filters(min_height=2000), lambda m: m["original_height"] >= 2000),
    "aspect": (Filters(aspect=(1.8, 2.5)), lambda m: (m["original_height"] > 0) & (
        m["original_width"] / np.maximum(m["original_height"], 1) >= 1.8) & (
        m["original_width"] / np.maximum(m["original_height"], 1) <= 2.5)),
    "license": (Filters(licenses=("CC-BY 4.0",)), lambda m: m["LICENSE"] == "CC-BY 4.0"),
    "domain": (Filters(url_domain="Example.org"), lambda m: np.ones(len(m["url"]), bool)),
    "other domain": (Filters(url_domain="example.com"), lambda m: np.zeros(len(m["url"]), bool)),
    "combined": (Filters(min_width=800, licenses=("?",), nsfw=("UNLIKELY",), aspect=(0.5, 2)),
                 lambda m: (m["original_width"] >= 800) & (m["LICENSE"] == "?") & (m["NSFW"] == "UNLIKELY") & (
                     m["original_width"] / np.maximum(m["original_height"], 1) >= 0.5) & (
                     m["original_width"] / np.maximum(m["original_height"], 1) <= 2)),
}


@pytest.mark.parametrize("name", FILTERS)
def test_every_filter_equals_numpy(loaded, parts_dir, name):
    ids, vectors, meta = rows(parts_dir)
    filters, mask_of = FILTERS[name]
    mask = mask_of(meta)
    for i in (3, 2500):
        got = search(loaded, vectors[i], k=20, filters=filters).column("id").to_pylist()
        assert got == numpy_ids(ids, vectors, vectors[i], 20, mask), name
        assert len(got) == min(20, int(mask.sum()))


def test_bad_filters_are_one_line():
    for make, message in [
        (lambda: Filters(nsfw=("maybe",)), "unknown NSFW"),
        (lambda: Filters(aspect=(2, 1)), "MIN <= MAX"),
        (lambda: Filters(min_width=-1), "between 0"),
        (lambda: Filters(url_domain="exa mple.org"), "host name"),
        (lambda: Filters(licenses=tuple(str(i) for i in range(21))), "at most 20"),
        (lambda: parse_aspect("wide"), "MIN:MAX"),
        (lambda: parse_aspect("a:b"), "numbers"),
    ]:
        with pytest.raises(ArgumentError, match=message) as err:
            make()
        assert "\n" not in str(err.value)
    assert parse_aspect("1.5:") == (1.5, 1e6) and parse_aspect(":0.8") == (1e-6, 0.8)


def test_a_store_made_before_the_metadata_columns(store, parts_dir):
    ingest(store, parts_dir, [0])
    store.execute(f"ALTER TABLE {store.table('laion')} DROP COLUMN original_width")  # as an older laionsearch made it
    with pytest.raises(ArgumentError, match="made before laionsearch kept original_width.*new store"):
        search(store, np.ones(512, np.float32), filters=Filters(min_width=10))
    assert search(store, np.ones(512, np.float32), k=3, nsfw=["UNLIKELY"]).num_rows == 3
    ingest(store, parts_dir, [1])  # more parts still go in, with the columns the table has
    assert search_like(store, row_id(1, 5), k=1).column("id").to_pylist() == [row_id(1, 5)]


# ---- the CLI ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_terms_weights_and_filters(parts_dir, tmp_path):
    db = tmp_path / "db"
    run_cli("ingest", str(parts_dir), db=db)
    ids, vectors, meta = rows(parts_dir)
    (tmp_path / "v.json").write_text(json.dumps(vectors[9].tolist()))
    out = run_cli("search", "--like-id", "12", "--vector-file", f"0.5*{tmp_path / 'v.json'}", "--not-id", "100000003",
                  "--min-width", "600", "--license", "?", "--aspect", "0.5:2", "-k", "12", "--format", "json", db=db)
    got = [r["id"] for r in json.loads(out.stdout)]
    mask = (meta["original_width"] >= 600) & (meta["LICENSE"] == "?") & (
        meta["original_width"] / np.maximum(meta["original_height"], 1) >= 0.5) & (
        meta["original_width"] / np.maximum(meta["original_height"], 1) <= 2)
    query = unit(vectors[12]) + 0.5 * unit(vectors[9]) - unit(vectors[SMALL_ROWS + 3])
    assert got == numpy_ids(ids, vectors, query, 12, mask)
    for args, message in [
        (["--not-id", "5"], "give a query"),
        (["--like-id", "x"], "row id"),
        (["--like-id", "5", "--aspect", "2"], "MIN:MAX"),
        (["--like-id", "5", "--like-id", "0*7"], "weight"),
    ]:
        proc = run_cli("search", *args, db=db, check=False)
        assert proc.returncode == 1 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, args


# ---- pages, vectors, near-duplicates ------------------------------------------------------------------------------

def test_pages_follow_each_other(loaded, parts_dir):
    ids, vectors, _ = rows(parts_dir)
    pages = [search(loaded, vectors[40], k=7, offset=o, exact=True).column("id").to_pylist() for o in (0, 7, 14)]
    whole = [i for page in pages for i in page]
    assert whole == numpy_ids(ids, vectors, vectors[40], 21) and len(set(whole)) == 21
    with pytest.raises(ArgumentError, match="offset \\+ k at most 10,000"):
        search(loaded, vectors[40], k=10, offset=9_991)


def test_with_vectors_returns_the_stored_embeddings(loaded, parts_dir):
    ids, vectors, _ = rows(parts_dir)
    found = search(loaded, Query.of(q.row(300)), k=4, with_vectors=True)
    assert found.column_names[-1] == "embedding"
    for i, v in zip(found.column("id").to_pylist(), found.column("embedding").to_pylist()):
        np.testing.assert_array_equal(np.asarray(v, np.float32), vectors[np.searchsorted(ids, i)])
    assert "embedding" not in search(loaded, Query.of(q.row(300)), k=4).column_names


@pytest.fixture
def doubled(store, parts_dir, tmp_path):
    """Part 0 and a copy of it as part 5: every image twice, same URL, same vector."""
    import shutil

    for sub, name in (("img_emb", "img_emb_{}.npy"), ("text_emb", "text_emb_{}.npy"),
                      ("metadata", "metadata_{}.parquet")):
        (tmp_path / sub).mkdir()
        for number in (0, 5):
            shutil.copy(parts_dir / sub / name.format(0), tmp_path / sub / name.format(number))
    ingest(store, tmp_path)
    return store


@pytest.mark.parametrize("kind", ["url", "image"])
def test_dedup_returns_k_distinct_rows(doubled, parts_dir, kind):
    ids, vectors, meta = rows(parts_dir)
    plain = search(doubled, vectors[17], k=10, exact=True)
    assert len(set(plain.column("url").to_pylist())) == 5  # each image twice
    distinct = search(doubled, vectors[17], k=10, dedup=kind, exact=True)
    urls = distinct.column("url").to_pylist()
    assert distinct.num_rows == 10 and len(set(urls)) == 10
    expected = numpy_ids(ids[:SMALL_ROWS], vectors[:SMALL_ROWS], vectors[17], 10)
    assert urls == [meta["url"][i] for i in expected]
    assert f"dedup {kind}:" in distinct.plan
    second = search(doubled, vectors[17], k=10, offset=10, dedup=kind, exact=True).column("url").to_pylist()
    assert not set(second) & set(urls) and len(set(second)) == 10


# ---- the model that made the store's vectors -----------------------------------------------------------------------

def test_the_store_records_its_model_and_queries_use_it(store, parts_dir, tiny_clip, monkeypatch):
    from laionsearch.schema import stored_origin

    monkeypatch.delenv("LAIONSEARCH_MODEL", raising=False)
    ingest(store, parts_dir, [0])
    assert stored_origin(store)["model"] == "openai/clip-vit-base-patch32"  # LAION's model for 512-d vectors
    ingest(store, parts_dir, [1], model=tiny_clip)
    assert stored_origin(store)["model"] == tiny_clip and "dataset" not in stored_origin(store)
    fresh = ls_store_like(store)  # no model given: the recorded one answers text queries
    assert fresh.model_name() == tiny_clip
    assert search(fresh, Query.of(q.text("a dog"), negative=[q.text("a cat")]), k=3).num_rows == 3


def ls_store_like(store):
    from laionsearch import Store

    return Store(engine=store.engine, database=store.database)


def test_a_model_of_another_dimension_is_one_line(store, tmp_path, tiny_clip):
    from laionsearch import SynthSpec, synth_parts

    synth_parts(tmp_path / "small", [0], SynthSpec(rows=300, dim=64, seed=2))
    ingest(store, tmp_path / "small", model="my/model-64")
    store.model = tiny_clip
    with pytest.raises(ArgumentError, match="gives 512-d vectors, the store holds 64-d ones .made by my/model-64") as err:
        search(store, Query.of(q.text("a dog")), k=3)
    assert "\n" not in str(err.value)


# ---- caption words: the text index, --caption-has, --hybrid ---------------------------------------------------------

@pytest.mark.parametrize("words", ["A Red-Car, on the beach!", "Ünïcode Café naïve ÉCOLE", "x_y z9 3d", "日本語 テキスト"])
def test_caption_tokens_are_the_engines(embedded_store, words):
    from laionsearch.ops.filters import caption_tokens

    engine = embedded_store.query("SELECT tokens(lower({w:String}), 'splitByNonAlpha') AS t", {"w": words})
    assert caption_tokens(words) == list(dict.fromkeys(engine.column("t")[0].as_py()))


def test_caption_has_keeps_rows_with_every_word_with_or_without_the_text_index(loaded, parts_dir):
    from laionsearch import create_index, drop_index, index_status

    ids, vectors, _ = rows(parts_dir)
    captions = [c or "" for n in (0, 1) for c in
                pq.read_table(parts_dir / "metadata" / f"metadata_{n}.parquet").column("caption").to_pylist()]
    words = set(caption_tokens_of(captions))
    mask = np.array([{"oil", "cat"} <= set(caption_tokens_of([c])) for c in captions])
    assert 20 <= mask.sum() < len(captions) / 10 and {"oil", "cat"} <= words
    expected = numpy_ids(ids, vectors, vectors[9], 15, mask)
    filters = Filters(caption_has="Oil  CAT")
    scanned = search(loaded, vectors[9], k=15, filters=filters)
    create_index(loaded, "caption")
    (status,) = [s for s in index_status(loaded) if s.column == "caption"]
    assert status.state == "built" and status.definition.startswith("text(")
    indexed = search(loaded, vectors[9], k=15, filters=filters)
    assert scanned.column("id").to_pylist() == indexed.column("id").to_pylist() == expected
    assert all({"oil", "cat"} <= set(caption_tokens_of([c])) for c in indexed.column("caption").to_pylist())
    drop_index(loaded, "caption")
    assert not [s for s in index_status(loaded) if s.column == "caption"]


def caption_tokens_of(captions):
    from laionsearch.ops.filters import caption_tokens

    return [t for c in captions for t in caption_tokens(c)]


def test_hybrid_finds_what_the_captions_say_when_the_vectors_do_not(store, parts_dir, tiny_clip):
    """The random tiny CLIP's text vectors know nothing of these captions; the captions name the topic."""
    from laionsearch import create_index

    ingest(store, parts_dir, model=tiny_clip)
    create_index(store, "caption")

    def share_about(result, topic):
        return np.mean([topic in (c or "") for c in result.column("caption").to_pylist()])

    query = Query.of(q.text("sushi"))
    plain = search(store, query, k=20)
    mixed = search(store, query, k=20, hybrid=True)
    assert mixed.num_rows == 20 and mixed.plan.startswith("hybrid:")
    assert share_about(mixed, "sushi") >= 0.45 and share_about(mixed, "sushi") > share_about(plain, "sushi") + 0.3
    # Reciprocal rank fusion: the top row of each ranking is in the fused top two.
    assert plain.column("id")[0].as_py() in mixed.column("id").to_pylist()[:2]
    with pytest.raises(ArgumentError, match="give a --text query"):
        search(store, Query.of(q.row(3)), hybrid=True)


def test_fusion_orders_by_reciprocal_ranks():
    from laionsearch.ops.hybrid import fuse

    assert fuse([[1, 2, 3], [2, 9]]) == [2, 1, 9, 3]  # 2: 1/62 + 1/61; 1: 1/61; 9: 1/62; 3: 1/63
    assert fuse([[1, 2, 3], [3, 2, 9]]) == [3, 2, 1, 9]  # 3: 1/63 + 1/61 just above 2: 2/62
    assert fuse([[5], []]) == [5] and fuse([[], []]) == []

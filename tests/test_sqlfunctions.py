"""encode_text/encode_image in the store's SQL: correct, and fast in the guide's form."""

import numpy as np
import pytest

from laionsearch import ingest
from laionsearch.clip.encoders import get_encoder
from laionsearch.ops.index import create_index
from laionsearch.clip.sqlfunctions import _unquote, rewrite

GUIDE_TEXT = ("SELECT url FROM {t} ORDER BY cosineDistance(image_embedding, encode_text('a dog and a cat')) ASC "
              "LIMIT 10")
GUIDE_IMAGE = "SELECT url FROM {t} ORDER BY cosineDistance(image_embedding, encode_image('{path}')) ASC LIMIT 10"


@pytest.fixture
def clip_store(store, parts_dir, tiny_clip):
    store.model = tiny_clip
    ingest(store, parts_dir, [0])
    create_index(store, "image", m=8, ef_construction=32)
    return store


def test_encode_text_in_sql_equals_the_encoder(clip_store, tiny_clip):
    (row,) = clip_store.query("SELECT encode_text('cat') AS v, toTypeName(v) AS t").to_pylist()
    assert row["t"] == "Array(Float32)"
    np.testing.assert_allclose(row["v"], get_encoder(tiny_clip).encode_text("cat"), atol=1e-6)


@pytest.mark.parametrize("form", ["text", "image"])
def test_guide_forms_encode_once_and_use_the_index(clip_store, tiny_clip, photos, form):
    sql = (GUIDE_TEXT if form == "text" else GUIDE_IMAGE).format(t=clip_store.table("laion"), path=photos / "photo_1.png")
    encoder = get_encoder(tiny_clip)
    before = encoder.calls
    rows = clip_store.query(sql).to_pylist()
    assert len(rows) == 10 and encoder.calls - before == 1
    plan = "\n".join(clip_store.query("EXPLAIN indexes = 1 " + sql).column(0).to_pylist())
    assert "Name: image_index" in plan


def test_per_row_calls_still_work(embedded_store, parts_dir, tiny_clip):
    """Per-row calls need Python functions inside the engine: embedded chDB only (a server has `udf export`)."""
    clip_store = embedded_store
    clip_store.model = tiny_clip
    ingest(clip_store, parts_dir, [0])
    rows = clip_store.query(
        f"SELECT caption, encode_text(caption) AS v FROM {clip_store.table('laion')} "
        "WHERE id IN (12, 13, 14) ORDER BY id"
    ).to_pylist()
    expected = get_encoder(tiny_clip).encode_texts([r["caption"] for r in rows])
    np.testing.assert_allclose([r["v"] for r in rows], expected, atol=1e-5)


def test_rewrite_replaces_literals_with_parameters(tiny_clip):
    sql, params = rewrite("SELECT encode_text('it''s'), encode_text('it\\'s'), encode_text(caption) FROM t", {"k": 1},
                          lambda: get_encoder(tiny_clip))
    assert sql == ("SELECT {_laionsearch_text_0:Array(Float32)}, {_laionsearch_text_0:Array(Float32)}, "
                   "encode_text(caption) FROM t")
    assert set(params) == {"k", "_laionsearch_text_0"} and len(params["_laionsearch_text_0"]) == 512


def test_unquote():
    assert _unquote("it''s") == "it's"
    assert _unquote("a\\'b\\\\c\\td") == "a'b\\c\td"

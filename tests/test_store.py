import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laionsearch import QueryError, Store, StoreError
from laionsearch.engine.params import to_param


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_string_parameters_arrive_unchanged(store_path, text):
    store = Store(store_path)
    got = store.query("SELECT {s:String} AS s, {a:Array(String)} AS a", {"s": text, "a": [text, "x"]}).to_pylist()
    assert got == [{"s": text, "a": [text, "x"]}]


def test_float32_vectors_arrive_bit_exact(store_path):
    vec = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    got = Store(store_path).query("SELECT {v:Array(Float32)} AS v", {"v": vec}).column("v")[0].as_py()
    assert np.array_equal(np.array(got, dtype=np.float32), vec)


def test_engine_errors_become_one_line_query_errors(store):
    with pytest.raises(QueryError) as err:
        store.query("SELECT * FROM no_such_table")
    assert "no_such_table" in str(err.value) and "\n" not in str(err.value)


def test_second_store_path_in_one_process_is_refused(store, tmp_path):
    with pytest.raises(StoreError, match="one store path per process"):
        Store(tmp_path / "other")


def test_bad_database_name(store_path):
    with pytest.raises(StoreError, match="bad database name"):
        Store(store_path, database="x; DROP")


def test_to_param_renders_values():
    assert to_param([1, 2.5, "a'b"]) == "[1,2.5,'a\\'b']"
    assert to_param("tab\there") == "tab\\there"
    assert to_param(3) == "3"

"""`plan`: the numbers follow from the release and the formulas, and say where they come from."""

import json

import pytest

from laionsearch import ArgumentError
from laionsearch.ops.plan import make_plan
from laionsearch.release.datasets import builtin_manifest

from .conftest import run_cli


def as_dict(lines):
    return {line.quantity: line for line in lines}


def test_laion400m_part_0_from_the_manifest():
    manifest = builtin_manifest("laion400m.tsv")
    plan = as_dict(make_plan("laion400m", [0], column="image", quantization="bf16", m=16, ef_construction=64))
    img = manifest["img_emb/img_emb_0.npy"].size
    rows = (img - 128) // 1024
    assert rows == 1_000_448 and plan["rows"].value.startswith("1,000,448 in 1 part(s)")
    total = img + manifest["text_emb/text_emb_0.npy"].size + manifest["metadata/metadata_0.parquet"].size
    assert plan["download"].value == f"{total / 1e9:,.1f} GB"
    assert plan["index memory"].value == f"{rows * (512 * 2 + 16 * 8) / 1e9:,.1f} GB"
    assert "manifest" in plan["rows"].basis and "formula" in plan["index memory"].basis


def test_whole_release_both_columns_over_shards():
    plan = as_dict(make_plan("laion400m", None, column="both", quantization="i8", m=32, ef_construction=128, shards=4,
                             cores=16, ram=256 * 10**9))
    assert plan["rows"].value.startswith("407,314,954 in 410 part(s)")
    memory = 2 * 407_314_954 * (512 + 32 * 8)
    assert plan["index memory"].value == f"{memory / 1e9:,.1f} GB, {memory / 4 / 1e9:,.1f} GB per shard"
    assert plan["fits"].value.startswith("yes")
    tight = as_dict(make_plan("laion400m", None, column="both", shards=1, ram=64 * 10**9))
    assert tight["fits"].value.startswith("NO")


def test_build_time_scales_with_parts_columns_and_machines():
    one = as_dict(make_plan("laion2b-en", list(range(10)), column="image", cores=2))
    both = as_dict(make_plan("laion2b-en", list(range(10)), column="both", cores=2))
    cpu = lambda plan: float(plan["index build"].value.split(" CPU-hours")[0])  # noqa: E731
    assert cpu(both) == pytest.approx(2 * cpu(one), rel=0.01)
    assert "768-d" in one["rows"].value and "announcement" in one["rows"].basis


def test_bad_choices():
    with pytest.raises(ArgumentError, match="unknown quantization"):
        make_plan(quantization="q4")
    with pytest.raises(ArgumentError, match="part 999 is not in the laion400m release"):
        make_plan("laion400m", [999])
    with pytest.raises(ArgumentError, match="--shards and --cores must be at least 1"):
        make_plan(shards=0)


def test_cli_plan_is_one_json_document():
    proc = run_cli("plan", "--parts", "0-9", "--column", "image", "--quantization", "i8", "--m", "32",
                   "--ram", "16GB", "--format", "json")
    rows = {r["quantity"]: r["value"] for r in json.loads(proc.stdout)}
    assert rows["rows"].startswith("9,646,707 in 10 part(s)") and rows["fits"].startswith("yes")

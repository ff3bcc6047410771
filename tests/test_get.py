"""`get`: download + ingest part by part, against the local fault-injecting server."""

import pytest

from .conftest import SMALL_ROWS, cli_json, run_cli, write_manifest

FINGERPRINT = (
    "SELECT count() AS n, sum(cityHash64(id, url, caption, NSFW, similarity, image_embedding, text_embedding)) AS h "
    "FROM laion"
)


@pytest.mark.slow
def test_get_matches_download_then_ingest_and_removes_raw_files(server, parts_dir, tmp_path, manifest):
    write_manifest(manifest, tmp_path / "m.tsv")
    common = ["--parts", "0-1", "--base-url", server.url, "--manifest", str(tmp_path / "m.tsv")]
    out = run_cli("get", *common, "--dest", str(tmp_path / "raw"), db=tmp_path / "db-get").stderr
    assert f"got 2 part(s)" in out and f"{2 * SMALL_ROWS:,} rows ingested" in out
    assert not [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]

    run_cli("download", *common, "--dest", str(tmp_path / "dl"))
    run_cli("ingest", str(tmp_path / "dl"), db=tmp_path / "db-two-step")
    assert cli_json("sql", FINGERPRINT, db=tmp_path / "db-get") == cli_json("sql", FINGERPRINT, db=tmp_path / "db-two-step")

    again = run_cli("get", *common, "--dest", str(tmp_path / "raw"), db=tmp_path / "db-get").stderr
    assert "2 part(s) already in the store" in again and "0.0 MB downloaded" in again
    # The store knows where its vectors come from, so text queries pick the right CLIP model.
    info = run_cli("info", db=tmp_path / "db-get").stderr
    assert "vectors by openai/clip-vit-base-patch32 (laion400m)" in info


@pytest.mark.slow
def test_get_keeps_raw_files_of_a_part_that_did_not_arrive(server, parts_dir, tmp_path, manifest):
    write_manifest(manifest, tmp_path / "m.tsv")
    server.faults["metadata/metadata_1.parquet"] = ["500"] * 2
    raw = tmp_path / "raw"
    proc = run_cli("get", "--parts", "0-1", "--dest", str(raw), "--base-url", server.url, "--manifest",
                   str(tmp_path / "m.tsv"), "--attempts", "2", db=tmp_path / "db", check=False)
    assert proc.returncode == 1
    assert "part 1: metadata/metadata_1.parquet: HTTP 500" in proc.stderr.strip().splitlines()[-1]
    assert cli_json("info", db=tmp_path / "db") == [{"part": 0, "rows": SMALL_ROWS}]
    left = sorted(str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file())
    assert left == ["img_emb/img_emb_1.npy", "text_emb/text_emb_1.npy"]


def test_keep_raw(server, tmp_path, manifest):
    write_manifest(manifest, tmp_path / "m.tsv")
    run_cli("get", "--parts", "1", "--dest", str(tmp_path / "raw"), "--keep-raw", "--base-url", server.url,
            "--manifest", str(tmp_path / "m.tsv"), db=tmp_path / "db")
    assert (tmp_path / "raw" / "metadata" / "metadata_1.parquet").exists()
    assert cli_json("info", db=tmp_path / "db") == [{"part": 1, "rows": SMALL_ROWS}]

"""`embed`: the user's own images become a LAION-format part that ingests and searches."""

import pyarrow.parquet as pq

from laionsearch import check_part, find_parts

from .conftest import cli_json, run_cli


def test_embed_ingest_and_search_by_image(tiny_clip, photos, tmp_path):
    (tmp_path / "captions.tsv").write_text("file\tcaption\nphoto_1.png\ta \"red\" square\n")
    out = run_cli("embed", str(photos), str(tmp_path / "parts"), "--captions", str(tmp_path / "captions.tsv"),
                  "--part", "4", "--model", tiny_clip)
    assert "wrote part 4: 6 image(s)" in out.stderr and "1 skipped" in out.stderr
    assert "skipped notes.jpg" in out.stderr
    checked = check_part(find_parts(tmp_path / "parts")[0])
    assert (checked.number, checked.rows, checked.dim, checked.img.dtype.str) == (4, 6, 512, "<f2")
    meta = pq.read_table(tmp_path / "parts" / "metadata" / "metadata_4.parquet")
    assert meta.column("caption").to_pylist()[:3] == ["photo 0", 'a "red" square', "photo 2"]
    assert meta.column("url").to_pylist()[0] == (photos / "photo_0.png").resolve().as_uri()

    db = tmp_path / "db"
    run_cli("ingest", str(tmp_path / "parts"), db=db)
    rows = cli_json("search", "--image", str(photos / "photo_3.png"), "--model", tiny_clip, "-k", "3", db=db)
    assert rows[0]["url"].endswith("photo_3.png") and rows[0]["distance"] < 1e-3
    rows = cli_json("search", "--text", "a \"red\" square", "--column", "text", "--model", tiny_clip, "-k", "1", db=db)
    assert rows[0]["caption"] == 'a "red" square'


def test_encode_command(tiny_clip, photos):
    import json

    vector = json.loads(run_cli("encode", "--text", "cat", "--model", tiny_clip).stdout)
    assert len(vector) == 512 and abs(sum(v * v for v in vector) - 1) < 1e-4
    bad = run_cli("encode", "--image", str(photos / "notes.jpg"), "--model", tiny_clip, check=False)
    assert bad.returncode == 1 and bad.stderr.strip().endswith("not an image (or a format Pillow cannot read)")
    bad = run_cli("search", "--not-text", "cat", "--not-image", "x.png", check=False)
    assert bad.returncode == 1 and "give a query" in bad.stderr

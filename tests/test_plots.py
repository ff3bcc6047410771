"""The recall/latency chart: one dot per setting where its numbers say, in every format."""

import re

import pytest

from laionsearch import ArgumentError
from laionsearch.plots import HEIGHT, WIDTH, Point, layout, to_svg, write_plot

POINTS = [Point("ef=16", 0.86, 6.0), Point("ef=64", 0.975, 8.0), Point("ef=256", 0.995, 11.0), Point("exact", 1.0, 60.0)]


def test_dots_sit_at_their_recall_and_latency():
    dots = {s.text: s.coords for s in layout(POINTS, "t") if s.kind == "dot"}
    assert list(dots) == ["ef=16", "ef=64", "ef=256", "exact"]
    xs = [dots[p.label][0] for p in POINTS]
    ys = [dots[p.label][1] for p in POINTS]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # slower is right, higher recall is up
    assert all(0 <= x <= WIDTH and 0 <= y <= HEIGHT for x, y in zip(xs, ys))
    # Linear axes: equal steps in latency are equal steps in pixels.
    assert (xs[1] - xs[0]) / 2.0 == pytest.approx((xs[2] - xs[1]) / 3.0)


def test_svg_escapes_the_title_and_has_one_circle_per_setting():
    svg = to_svg(layout(POINTS, "<script>alert(1)</script>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert len(re.findall(r"<circle ", svg)) == 4


def test_png_and_html_files(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    png = write_plot(POINTS, tmp_path / "r.png", "recall")
    with pil.open(png) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
        assert image.getpixel((WIDTH // 2, HEIGHT // 2)) != (0, 0, 0)
    html = write_plot(POINTS, tmp_path / "r.html", "recall").read_text()
    assert html.startswith("<!doctype html>") and html.count("<tr>") == 5


def test_unknown_format_and_nothing_to_plot(tmp_path):
    with pytest.raises(ArgumentError, match="write .png, .html or .svg"):
        write_plot(POINTS, tmp_path / "r.jpg", "t")
    with pytest.raises(ArgumentError, match="nothing to plot"):
        layout([], "t")

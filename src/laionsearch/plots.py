"""Recall against latency, one point per ef and one for exact search, as SVG, HTML or PNG.

The chart is laid out once as shapes (lines, dots, texts in pixels) and then
written as SVG text or drawn with Pillow for PNG; no plotting library needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from .errors import ArgumentError

PLOT_FORMATS = (".png", ".html", ".svg")
WIDTH, HEIGHT = 640, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 50, 60
ANN, EXACT, AXIS, GRID, INK = "#2563eb", "#dc2626", "#374151", "#e5e7eb", "#111827"


@dataclass(frozen=True)
class Point:
    """One measured setting: its label (``ef=64`` or ``exact``), recall and p50 latency."""

    label: str
    recall: float
    p50_ms: float


@dataclass(frozen=True)
class Shape:
    kind: str  # line, dot, text
    coords: tuple[float, ...]
    color: str
    text: str = ""
    anchor: str = "start"  # text: start, middle, end


def check_plot_path(path: str | Path) -> Path:
    """``path`` if its suffix is a format this module writes, else a one-line ArgumentError."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_FORMATS:
        raise ArgumentError(f"--plot {path}: write .png, .html or .svg")
    return path


def write_plot(points: Sequence[Point], path: str | Path, title: str) -> Path:
    """Write the recall/latency chart to ``path`` (.png, .html or .svg)."""
    path = check_plot_path(path)
    shapes = layout(points, title)
    suffix = path.suffix.lower()
    if suffix == ".png":
        _write_png(shapes, path)
    elif suffix == ".svg":
        path.write_text(to_svg(shapes))
    else:
        rows = "".join(f"<tr><td>{escape(p.label)}</td><td>{p.recall:.3f}</td><td>{p.p50_ms:.2f}</td></tr>"
                       for p in points)
        path.write_text(
            f"<!doctype html><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<body style='font-family:sans-serif'>{to_svg(shapes)}"
            f"<table><tr><th>setting</th><th>recall</th><th>p50 ms</th></tr>{rows}</table></body>\n"
        )
    return path


def layout(points: Sequence[Point], title: str) -> list[Shape]:
    """The chart as shapes in a WIDTH x HEIGHT pixel box: axes, ticks, one dot per point, a line through the ef points."""
    if not points:
        raise ArgumentError("nothing to plot: no measured settings")
    x_max = _nice_ceiling(max(p.p50_ms for p in points) * 1.1)
    y_min = min(0.9, math.floor(min(p.recall for p in points) * 10) / 10)
    to_x = lambda ms: LEFT + (WIDTH - LEFT - RIGHT) * ms / x_max  # noqa: E731
    to_y = lambda recall: TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - recall) / (1.0 - y_min)  # noqa: E731
    shapes = [Shape("text", (WIDTH / 2, 28), INK, title, "middle")]
    for i in range(6):
        ms, recall = x_max * i / 5, y_min + (1.0 - y_min) * i / 5
        shapes += [
            Shape("line", (to_x(ms), TOP, to_x(ms), HEIGHT - BOTTOM), GRID),
            Shape("line", (LEFT, to_y(recall), WIDTH - RIGHT, to_y(recall)), GRID),
            Shape("text", (to_x(ms), HEIGHT - BOTTOM + 18), AXIS, f"{ms:g}", "middle"),
            Shape("text", (LEFT - 8, to_y(recall) + 4), AXIS, f"{recall:.2f}", "end"),
        ]
    shapes += [
        Shape("line", (LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT, HEIGHT - BOTTOM), AXIS),
        Shape("line", (LEFT, TOP, LEFT, HEIGHT - BOTTOM), AXIS),
        Shape("text", (WIDTH / 2, HEIGHT - 18), AXIS, "p50 latency (ms)", "middle"),
        Shape("text", (14, TOP - 14), AXIS, "recall", "start"),
    ]
    ann = [p for p in points if p.label != "exact"]
    for a, b in zip(ann, ann[1:]):
        shapes.append(Shape("line", (to_x(a.p50_ms), to_y(a.recall), to_x(b.p50_ms), to_y(b.recall)), ANN))
    for i, p in enumerate(points):
        color = EXACT if p.label == "exact" else ANN
        x, y = to_x(p.p50_ms), to_y(p.recall)
        below = i % 2 == 1  # alternate label sides: neighbouring points often sit close together
        shapes += [Shape("dot", (x, y, 4), color, p.label), Shape("text", (x + 7, y + 16 if below else y - 7), color, p.label)]
    return shapes


def to_svg(shapes: Sequence[Shape]) -> str:
    """The shapes as one SVG element."""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    for s in shapes:
        if s.kind == "line":
            x1, y1, x2, y2 = s.coords
            out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{s.color}"/>')
        elif s.kind == "dot":
            x, y, r = s.coords
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{s.color}"><title>{escape(s.text)}</title>'
                       "</circle>")
        else:
            x, y = s.coords
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" fill="{s.color}" text-anchor="{s.anchor}">{escape(s.text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _write_png(shapes: Sequence[Shape], path: Path) -> None:
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise ArgumentError("--plot FILE.png needs Pillow (pip install pillow); .html and .svg need nothing") from None
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    anchors = {"start": "ls", "middle": "ms", "end": "rs"}  # Pillow: left/middle/right, on the baseline
    for s in shapes:
        if s.kind == "line":
            draw.line(s.coords, fill=s.color, width=1)
        elif s.kind == "dot":
            x, y, r = s.coords
            draw.ellipse((x - r, y - r, x + r, y + r), fill=s.color)
        else:
            draw.text(s.coords, s.text, fill=s.color, anchor=anchors[s.anchor], font_size=12)
    image.save(path, format="PNG")


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n that is at least ``value`` (axis ends on a round number)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)

"""Small server-rendered SVG charts: no JavaScript, no external library, nothing from a CDN.

Labels are codes, dates and counts (never a personal value), escaped all the same.
The SVG's geometry is in attributes, not in style: the pages' Content-Security-Policy
allows no inline style.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

__all__ = ["bars", "columns", "weights"]

ROW = 22
LABEL_WIDTH = 230
BAR_WIDTH = 360


def bars(items: Sequence[tuple[str, int]]) -> Markup:
    """Horizontal bars, one per (label, count).

    >>> "width=\\"360.0\\"" in bars([("a", 4), ("b", 2)])
    True
    """
    if not items:
        return Markup('<p class="empty">nothing</p>')
    top = max(n for _, n in items) or 1
    height = ROW * len(items)
    parts = [f'<svg class="chart" role="img" width="{LABEL_WIDTH + BAR_WIDTH + 60}" height="{height}" '
             f'viewBox="0 0 {LABEL_WIDTH + BAR_WIDTH + 60} {height}">']
    for i, (label, n) in enumerate(items):
        y = i * ROW
        width = round(BAR_WIDTH * n / top, 1)
        parts.append(f'<text x="0" y="{y + 15}" class="label">{escape(str(label))[:40]}</text>'
                     f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width}" height="{ROW - 6}" class="bar"/>'
                     f'<text x="{LABEL_WIDTH + width + 6}" y="{y + 15}" class="value">{n}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(items: Sequence[tuple[str, int]], unit: str = "") -> Markup:
    """Vertical columns, one per (label, value): nights on the x axis."""
    if not items:
        return Markup('<p class="empty">no nights loaded in the last 30 days</p>')
    width, height, gap = 28, 140, 6
    top = max(v for _, v in items) or 1
    total_width = len(items) * (width + gap)
    parts = [f'<svg class="chart" role="img" width="{total_width}" height="{height + 40}" '
             f'viewBox="0 0 {total_width} {height + 40}">']
    for i, (label, value) in enumerate(items):
        x = i * (width + gap)
        h = round(height * value / top, 1)
        parts.append(f'<rect x="{x}" y="{height - h + 14}" width="{width}" height="{h}" class="bar"/>'
                     f'<text x="{x + width / 2}" y="{height - h + 10}" class="value" text-anchor="middle">'
                     f'{value}{escape(unit)}</text>'
                     f'<text x="{x + width / 2}" y="{height + 30}" class="label" text-anchor="middle">'
                     f'{escape(str(label))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def weights(comparisons: Sequence[dict]) -> list[Markup]:
    """One small bar per comparison: its match weight in bits, right of the axis for, left against."""
    scale = max([abs(c["weight"]) for c in comparisons if c["weight"] is not None] + [1.0])
    out = []
    half = 100
    for c in comparisons:
        if c["weight"] is None:
            out.append(Markup(""))
            continue
        w = round(half * abs(c["weight"]) / scale, 1)
        x = half if c["weight"] >= 0 else half - w
        kind = "for" if c["weight"] >= 0 else "against"
        out.append(Markup(f'<svg class="weight" width="{2 * half}" height="14" viewBox="0 0 {2 * half} 14">'
                          f'<line x1="{half}" y1="0" x2="{half}" y2="14" class="axis"/>'
                          f'<rect x="{x}" y="2" width="{w}" height="10" class="{kind}"/></svg>'))
    return out

"""Small inline-SVG charts for the HTML report: bars, histograms, a waterfall, a sunburst.

Each function returns one ``<svg class="chart">`` string with no external reference (no
fonts, scripts or images), so the report works offline. Every bar or arc has a ``<title>``
that the browser shows on hover. Text is escaped.

Example:
    >>> svg = bar_chart(["en", "zh"], [90, 10], title="Languages")
    >>> svg.startswith("<svg") and "en" in svg and svg.count("<rect") == 2
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

#: Colours: a blue for data, red for removals, green for additions, then a categorical set.
BLUE = "#3b6fb6"
RED = "#d0533f"
GREEN = "#3f9a5b"
GREY = "#8a94a6"
PALETTE = (
    "#3b6fb6", "#e08a2e", "#3f9a5b", "#c2464a", "#7d5bb0", "#8c6246", "#d16ba5", "#5f6b7a",
    "#a8a537", "#2fa5b5", "#6d8fd1", "#f0b56c", "#77c18a", "#e7807f", "#a990cf", "#c09a82",
)
_FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif"'


def fmt(value: float) -> str:
    """A compact number: 1234 -> '1,234', 1234567 -> '1.23M', 0.25 -> '0.25'.

    Example:
        >>> fmt(1234), fmt(1234567), fmt(0.256), fmt(12.0)
        ('1,234', '1.23M', '0.256', '12')
    """
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}"
    v = int(value)
    if abs(v) >= 10_000_000:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 1_000_000:
        return f"{v / 1e6:.2f}M"
    return f"{v:,}"


def _svg(width: float, height: float, body: Sequence[str], label: str) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{escape(label)}" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" {_FONT} font-size="12">'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, s: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(s)}</text>'


def _width(s: str, size: float = 12) -> float:
    """Rough rendered width of ``s`` in a sans-serif font (wide for capitals and CJK)."""
    units = sum(
        1.0 if ord(c) > 0x2E80 else 0.68 if c.isupper() or c in "mwMW_" else 0.3 if c in "il.,:;|!'" else 0.55
        for c in s
    )
    return units * size


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str = "",
    width: int = 560,
    color: str = BLUE,
    colors: Sequence[str] | None = None,
    notes: Sequence[str] | None = None,
    label_chars: int = 28,
) -> str:
    """Horizontal bars, one per label, with the value at the end of each bar.

    ``notes`` (one per bar) is appended to the value, e.g. a percentage.

    Example:
        >>> "1,500" in bar_chart(["code"], [1500])
        True
    """
    row, top = 22, 8
    label_w = min(240, max((_width(_clip(str(s), label_chars)) for s in labels), default=30) + 14)
    value_w = 16 + max(
        (_width(f"{fmt(v)} {notes[i] if notes else ''}") for i, v in enumerate(values)), default=40
    )
    plot_w = max(60, width - label_w - value_w)
    vmax = max((v for v in values), default=0) or 1
    height = top * 2 + row * max(len(labels), 1)
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        w = max(1.0, plot_w * value / vmax) if value > 0 else 0.0
        fill = colors[i] if colors else color
        note = f" {notes[i]}" if notes else ""
        body.append(_text(label_w - 8, y + 15, _clip(str(label), label_chars), "end"))
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{fill}" rx="2">'
            f"<title>{escape(str(label))}: {escape(fmt(value))}{escape(note)}</title></rect>"
        )
        body.append(_text(label_w + w + 6, y + 15, f"{fmt(value)}{note}", extra='fill="#333"'))
    return _svg(width, height, body, title or "bar chart")


def histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    overflow: int = 0,
    title: str = "",
    xlabel: str = "",
    width: int = 380,
    height: int = 170,
    color: str = BLUE,
) -> str:
    """Vertical histogram of ``counts`` over bins ``edges`` (len(counts) + 1 edges).

    ``overflow`` counts values above the last edge; it is drawn as a grey bar at the right.

    Example:
        >>> svg = histogram([0, 10, 20], [3, 5], overflow=1, xlabel="chars")
        >>> svg.count("<rect")
        3
    """
    left, right, top, bottom = 46, 12, 18, 34
    n = len(counts) + (1 if overflow else 0)
    plot_w, plot_h = width - left - right, height - top - bottom
    cmax = max([*counts, overflow, 1])
    bw = plot_w / max(n, 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        _text(left - 4, top + 4, fmt(cmax), "end", 'fill="#666" font-size="10"'),
        _text(left - 4, top + plot_h, "0", "end", 'fill="#666" font-size="10"'),
    ]
    for i, c in enumerate(counts):
        h = plot_h * c / cmax
        lo, hi = edges[i], edges[i + 1]
        body.append(
            f'<rect x="{left + i * bw + 0.5:.1f}" y="{top + plot_h - h:.1f}" width="{max(bw - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{fmt(lo)}–{fmt(hi)}: {fmt(c)}</title></rect>'
        )
    if overflow:
        h = plot_h * overflow / cmax
        body.append(
            f'<rect x="{left + len(counts) * bw + 0.5:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(bw - 1, 0.5):.1f}" height="{h:.1f}" fill="{GREY}">'
            f"<title>&gt; {fmt(edges[-1])}: {fmt(overflow)}</title></rect>"
        )
    for frac in (0.0, 0.5, 1.0):
        x = left + frac * len(counts) * bw
        value = edges[0] + frac * (edges[-1] - edges[0])
        body.append(_text(x, top + plot_h + 14, fmt(round(value)), "middle", 'fill="#666" font-size="10"'))
    if xlabel:
        body.append(_text(left + plot_w / 2, height - 4, xlabel, "middle", 'fill="#444"'))
    if title:
        body.append(_text(left, 12, title, "start", 'font-weight="600"'))
    return _svg(width, height, body, title or xlabel or "histogram")


def waterfall(
    start: tuple[str, int],
    steps: Sequence[tuple[str, int]],
    end: tuple[str, int],
    *,
    width: int = 1180,
    title: str = "removal waterfall",
) -> str:
    """Horizontal waterfall: a total bar, one floating bar per change, the final total.

    Negative changes (removals) are red, positive ones (repeats added by a mix) green.

    Example:
        >>> svg = waterfall(("records in", 10), [("quality · too_short", -3)], ("records out", 7))
        >>> svg.count("<rect")
        3
    """
    rows = [(start[0], 0, start[1], "total"), ]
    level = start[1]
    for label, delta in steps:
        new = level + delta
        rows.append((label, min(level, new), max(level, new), "down" if delta < 0 else "up"))
        level = new
    rows.append((end[0], 0, end[1], "total"))
    row, top = 24, 8
    label_w, value_w = 330, 130
    plot_w = width - label_w - value_w
    vmax = max((r[2] for r in rows), default=1) or 1
    height = top * 2 + row * len(rows)
    body = []
    prev_x = None
    for i, (label, lo, hi, kind) in enumerate(rows):
        y = top + i * row
        x0, x1 = label_w + plot_w * lo / vmax, label_w + plot_w * hi / vmax
        fill = {"total": BLUE, "down": RED, "up": GREEN}[kind]
        value = hi - lo
        shown = fmt(value) if kind == "total" else ("−" if kind == "down" else "+") + fmt(value)
        if kind != "total" and start[1]:
            shown += f" ({value / start[1]:.1%})"
        body.append(_text(label_w - 8, y + 16, _clip(label, 48), "end"))
        body.append(
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1.0):.1f}" height="{row - 6}" '
            f'fill="{fill}" rx="2"><title>{escape(label)}: {escape(shown)}</title></rect>'
        )
        if prev_x is not None:  # connector from the previous level
            body.append(
                f'<line x1="{prev_x:.1f}" y1="{y - 3}" x2="{prev_x:.1f}" y2="{y + 3}" stroke="#999"/>'
            )
        prev_x = x0 if kind == "down" else x1
        body.append(_text(max(x1, x0 + 1) + 6, y + 16, shown, extra='fill="#333"'))
    return _svg(width, height, body, title)


def sunburst(
    inner: Sequence[tuple[str, int]],
    outer: Sequence[Sequence[tuple[str, int]]],
    *,
    size: int = 460,
    title: str = "verbs and their objects",
) -> str:
    """Two-ring sunburst: inner arcs (e.g. verbs) sized by count, outer arcs (their objects)
    inside each inner arc's angle. ``outer[i]`` lists the children of ``inner[i]``.

    Example:
        >>> svg = sunburst([("write", 3), ("list", 1)], [[("poem", 2)], []])
        >>> svg.count("<path")
        3
    """
    cx = cy = size / 2
    r0, r1, r2 = size * 0.14, size * 0.31, size * 0.48
    total = sum(n for _, n in inner) or 1
    body = []
    angle = -math.pi / 2
    for i, ((label, n), children) in enumerate(zip(inner, outer, strict=True)):
        sweep = 2 * math.pi * n / total
        color = PALETTE[i % len(PALETTE)]
        body.append(_arc(cx, cy, r0, r1, angle, sweep, color, f"{label}: {fmt(n)}"))
        if sweep > 0.16:
            mid = angle + sweep / 2
            rr = (r0 + r1) / 2
            body.append(_text(cx + rr * math.cos(mid), cy + rr * math.sin(mid) + 4, label,
                              "middle", 'fill="#fff" font-size="11" font-weight="600"'))
        a = angle
        for child, m in children:
            csweep = 2 * math.pi * m / total
            body.append(_arc(cx, cy, r1 + 1, r2, a, csweep, color, f"{label} {child}: {fmt(m)}",
                             opacity=0.62))
            if csweep > 0.1:
                mid = a + csweep / 2
                rr = (r1 + r2) / 2
                body.append(_text(cx + rr * math.cos(mid), cy + rr * math.sin(mid) + 4,
                                  _clip(child, 12), "middle", 'fill="#222" font-size="10"'))
            a += csweep
        angle += sweep
    return _svg(size, size, body, title)


def _arc(cx: float, cy: float, r_in: float, r_out: float, start: float, sweep: float,
         color: str, tip: str, opacity: float = 1.0) -> str:
    # a full circle cannot be one arc command: stop just short of it
    sweep = min(sweep, 2 * math.pi - 1e-4)
    end = start + sweep
    large = 1 if sweep > math.pi else 0
    p = [
        (cx + r_out * math.cos(start), cy + r_out * math.sin(start)),
        (cx + r_out * math.cos(end), cy + r_out * math.sin(end)),
        (cx + r_in * math.cos(end), cy + r_in * math.sin(end)),
        (cx + r_in * math.cos(start), cy + r_in * math.sin(start)),
    ]
    d = (
        f"M{p[0][0]:.2f},{p[0][1]:.2f} A{r_out:.2f},{r_out:.2f} 0 {large} 1 {p[1][0]:.2f},{p[1][1]:.2f} "
        f"L{p[2][0]:.2f},{p[2][1]:.2f} A{r_in:.2f},{r_in:.2f} 0 {large} 0 {p[3][0]:.2f},{p[3][1]:.2f} Z"
    )
    return (f'<path d="{d}" fill="{color}" fill-opacity="{opacity}" stroke="#fff" stroke-width="1">'
            f"<title>{escape(tip)}</title></path>")

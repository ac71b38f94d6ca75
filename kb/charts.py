"""Charts drawn at build time as inline SVG: no chart library runs in the reader's browser.

Colours come from the stylesheet through classes (`fill-<status>`), so the charts follow the
light and dark themes; every chart carries a title and a text description for screen readers,
and the numbers are printed on it, so nothing depends on colour alone.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from html import escape

from markupsafe import Markup


@dataclass(frozen=True)
class Bar:
    key: str  # a status: the class that colours the bar
    label: str
    value: int
    href: str = ""


def status_bars(bars: list[Bar], title: str, chart_id: str) -> Markup:
    """A horizontal bar chart of counts, each bar labelled with its name and number."""
    row, label_w, bar_w, gap = 26, 150, 260, 6
    top = max((b.value for b in bars), default=0) or 1
    height = row * len(bars) + gap
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'viewBox="0 0 {label_w + bar_w + 60} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">'
        + escape("; ".join(f"{b.label}: {b.value}" for b in bars)) + "</desc>",
    ]
    for i, b in enumerate(bars):
        y = gap + i * row
        w = round(bar_w * b.value / top, 1)
        label = (f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" '
                 f'class="chart-label">{escape(b.label)}</text>')
        if b.href:
            label = f'<a href="{escape(b.href)}">{label}</a>'
        parts.append(label)
        parts.append(f'<rect x="{label_w}" y="{y}" width="{max(w, 1)}" height="{row - gap - 4}" '
                     f'rx="3" class="fill-{escape(b.key)}"/>')
        parts.append(f'<text x="{label_w + max(w, 1) + 6}" y="{y + 14}" '
                     f'class="chart-value">{b.value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def _bounds(one: str) -> tuple[float, float] | None:
    """A YYYY, YYYY-MM or YYYY-MM-DD date as [start, end) in fractional years."""
    m = _PERIOD.match(one.strip())
    if not m:
        return None
    year = int(m.group(1))
    if m.group(2) is None:
        return float(year), year + 1.0
    month = int(m.group(2))
    if not 1 <= month <= 12:
        return None
    if m.group(3) is None:
        return year + (month - 1) / 12, year + month / 12
    try:
        day = dt.date(year, month, int(m.group(3)))
    except ValueError:
        return None
    start = year + (day.timetuple().tm_yday - 1) / 365.25
    return start, start + 1 / 365.25


def period_span(period: str | None) -> tuple[float, float] | None:
    """A claim's period (a date or an interval A/B) as [start, end) in fractional years."""
    if not period:
        return None
    if "/" in period:
        a, _, b = period.partition("/")
        first, last = _bounds(a), _bounds(b)
        if first is None or last is None or last[1] < first[0]:
            return None
        return first[0], last[1]
    return _bounds(period)


@dataclass(frozen=True)
class Point:
    """One quantity claim on the chart: a value held over a span of time."""

    claim_id: str
    label: str
    status: str
    value: float
    start: float
    end: float
    href: str
    current: bool = False


def human(value: float) -> str:
    """245e9 → "245bn": the axis labels a reader would write."""
    for size, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def quantity_chart(points: list[Point], unit: str, chart_id: str) -> Markup:
    """Values over their periods: a horizontal segment for each claim, at its value's height."""
    if not points:
        return Markup("")
    w, h, left, right, top, bottom = 560, 220, 64, 16, 14, 34
    x0 = min(p.start for p in points)
    x1 = max(p.end for p in points)
    if x1 - x0 < 1:
        x0, x1 = x0 - 0.5, x1 + 0.5
    hi = max(max(p.value for p in points), 0.0)
    lo = min(min(p.value for p in points), 0.0)
    if hi == lo:
        hi = lo + 1
    hi += (hi - lo) * 0.1

    def sx(x: float) -> float:
        return round(left + (x - x0) / (x1 - x0) * (w - left - right), 1)

    def sy(v: float) -> float:
        return round(top + (hi - v) / (hi - lo) * (h - top - bottom), 1)

    # Each point's text twice, as the description and as its own title: escaped once.
    texts = [escape(f"{p.label}: {human(p.value)} {unit}") for p in points]
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{chart_id}-t">{escape(f"Values in {unit} over time")}</title>',
        f'<desc id="{chart_id}-d">{"; ".join(texts)}</desc>',
        f'<line x1="{left}" y1="{sy(lo)}" x2="{w - right}" y2="{sy(lo)}" class="axis"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" class="axis"/>',
    ]
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{left - 6}" y="{sy(v) + 4}" text-anchor="end" '
                     f'class="chart-tick">{escape(human(v))}</text>')
    first, last = int(x0), int(x1 + 0.999)
    step = max(1, (last - first) // 6)
    for year in range(first, last + 1, step):
        if x0 <= year <= x1:
            parts.append(f'<text x="{sx(year)}" y="{h - bottom + 18}" text-anchor="middle" '
                         f'class="chart-tick">{year}</text>')
    for p, text in zip(points, texts, strict=True):
        x_a, x_b, y = sx(p.start), sx(p.end), sy(p.value)
        cls = f"stroke-{escape(p.status)}" + (" current" if p.current else "")
        parts.append(
            f'<a href="{escape(p.href)}"><g class="{cls}">'
            f"<title>{text}</title>"
            f'<line x1="{x_a}" y1="{y}" x2="{max(x_b, x_a + 3)}" y2="{y}" class="seg"/>'
            f'<circle cx="{round((x_a + x_b) / 2, 1)}" cy="{y}" r="4" class="dot"/>'
            f"</g></a>")
    parts.append("</svg>")
    return Markup("".join(parts))

"""The ``--report DIR`` HTML page: summary tables and inline SVG charts, no plotting library.

Charts: throughput over time, latency (p50/p99/max) over time, and latency by percentile on
the "nines" axis (50%, 90%, 99%, 99.9%, ... equally spaced), the usual HDR histogram plot.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from kms_actors.loadtest._histogram import Histogram
from kms_actors.loadtest._report import Report
from kms_actors.loadtest._table import render_table

_W, _H = 720, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 30, 45
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
Series = tuple[str, Sequence[tuple[float, float]]]


def _scale(low: float, high: float, log: bool) -> tuple[float, float]:
    if log:
        low, high = math.log10(max(low, 1e-6)), math.log10(max(high, 1e-6))
    return (low, high) if high > low else (low - 1, high + 1)


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(math.floor(low), math.ceil(high) + 1)]
    step = 10 ** math.floor(math.log10((high - low) / 4 or 1))
    step *= next(m for m in (1, 2, 5, 10) if (high - low) / (step * m) <= 6)
    return [step * i for i in range(math.ceil(low / step), math.floor(high / step) + 1)]


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:g}"


def svg_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    log_y: bool = False,
    x_ticks: Sequence[tuple[float, str]] | None = None,
) -> str:
    """Return an SVG line chart of ``series`` (name, [(x, y), ...])."""
    points = [p for _, pts in series for p in pts if not log_y or p[1] > 0]
    if not points:
        empty = f'<text x="10" y="30">{html.escape(title)}: no data</text>'
        return f'<svg width="{_W}" height="60">{empty}</svg>'
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = _scale(min(xs), max(xs), False)
    y0, y1 = _scale(min(ys) if log_y else 0.0, max(ys), log_y)
    if log_y:
        y0, y1 = math.floor(y0), math.ceil(y1)

    def px(x: float) -> float:
        return _LEFT + (x - x0) / (x1 - x0) * (_W - _LEFT - _RIGHT)

    def py(y: float) -> float:
        value = math.log10(max(y, 1e-6)) if log_y else y
        return _H - _BOTTOM - (value - y0) / (y1 - y0) * (_H - _TOP - _BOTTOM)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="11">',
        f'<text x="{_W / 2}" y="16" text-anchor="middle" font-size="13">'
        f"{html.escape(title)}</text>",
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_W - _LEFT - _RIGHT}" '
        f'height="{_H - _TOP - _BOTTOM}" fill="none" stroke="#888"/>',
    ]
    for tick in _ticks(y0, y1, log_y):
        y = py(tick)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>'
        )
    for tick, text in x_ticks or [(t, _label(t)) for t in _ticks(x0, x1, False)]:
        x = px(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{_H - _BOTTOM + 15}" text-anchor="middle">'
            f"{html.escape(text)}</text>"
        )
    parts.append(
        f'<text x="{_W / 2}" y="{_H - 8}" text-anchor="middle">{html.escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(14,{_H / 2}) rotate(-90)" text-anchor="middle">'
        f"{html.escape(y_label)}</text>"
    )
    for i, (name, pts) in enumerate(series):
        color = _COLORS[i % len(_COLORS)]
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts if not log_y or y > 0)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{line}"/>')
        parts.append(
            f'<text x="{_LEFT + 10 + 90 * i}" y="{_TOP + 14}" fill="{color}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def percentile_curve(histogram: Histogram) -> list[tuple[float, float]]:
    """Return (nines, latency ms) points: nines = log10(1 / (1 - q)), q in 0..1."""
    if histogram.count == 0:
        return []
    top = max(1.0, math.log10(histogram.count))
    steps = 200
    points = []
    for i in range(steps + 1):
        nines = top * i / steps
        q = 100.0 * (1.0 - 10.0**-nines)
        points.append((nines, histogram.value_at(q) / 1000))
    return points


def _nines_ticks(top: float) -> list[tuple[float, str]]:
    labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
    return [(float(n), labels[n]) for n in range(min(int(top), 6) + 1)]


def render_html(report: Report) -> str:
    """Return the report as a standalone HTML page."""
    timeline = report.timeline
    throughput = svg_chart(
        "Throughput over time",
        [
            ("ok/s", [(p.second, p.ok) for p in timeline]),
            ("errors+throttled/s", [(p.second, p.errors + p.throttles) for p in timeline]),
        ],
        x_label="second of the run",
        y_label="requests per second",
    )
    latency = svg_chart(
        "Latency over time (successful requests)",
        [
            ("p50", [(p.second, p.p50_ms) for p in timeline]),
            ("p99", [(p.second, p.p99_ms) for p in timeline]),
            ("max", [(p.second, p.max_ms) for p in timeline]),
        ],
        x_label="second of the run",
        y_label="latency (ms, log scale)",
        log_y=True,
    )
    series: list[Series] = [("all", percentile_curve(Histogram.from_data(report.total.histogram)))]
    if len(report.operations) > 1:
        series += [
            (op, percentile_curve(Histogram.from_data(o.histogram)))
            for op, o in list(report.operations.items())[:3]
        ]
    top = max((pts[-1][0] for _, pts in series if pts), default=1.0)
    percentiles = svg_chart(
        "Latency by percentile",
        series,
        x_label="percentile",
        y_label="latency (ms, log scale)",
        log_y=True,
        x_ticks=_nines_ticks(top),
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>kms-actors loadtest: {html.escape(report.target)} {html.escape(report.started_at)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:960px}}
pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style></head>
<body><h1>kms-actors loadtest</h1>
<pre>{html.escape(render_table(report))}</pre>
<h2>Latency over time</h2>
{latency}
<h2>Throughput over time</h2>
{throughput}
<h2>Latency by percentile</h2>
{percentiles}
</body></html>
"""

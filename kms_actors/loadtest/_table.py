"""Plain-text renderings of reports: the terminal table and ``compare A.json B.json``."""

from __future__ import annotations

from collections.abc import Callable

from kms_actors.loadtest._report import Outcomes, Report


def _load_text(report: Report) -> str:
    options = report.options
    workers = options.get("workers", 1)
    if report.model == "open":
        load = f"open loop, {options.get('rate'):,g} req/s offered"
    else:
        load = f"closed loop, concurrency {options.get('concurrency')}"
    bound = (
        f"{options.get('requests'):,} requests"
        if options.get("requests") is not None
        else f"{options.get('duration'):g} s"
    )
    return f"{load}, {workers} worker(s), {bound} + {options.get('warmup'):g} s warm-up"


def _workload_text(report: Report) -> str:
    options = report.options
    mix = options.get("mix")
    mix_text = (
        ",".join(f"{op}={weight}" for op, weight in mix.items()) if isinstance(mix, dict) else ""
    )
    keys = options.get("keys")
    context = options.get("context") or {}
    pairs = f", context {len(context)} pair(s)" if isinstance(context, dict) and context else ""
    return f"{mix_text}, payload {options.get('payload_size')} B, {keys} key(s){pairs}"


def _codes(outcomes: Outcomes) -> list[tuple[str, str]]:
    rows = [(f"  {code}", f"{count:,}") for code, count in outcomes.errors.items()]
    rows += [(f"  {code} (throttle)", f"{count:,}") for code, count in outcomes.throttles.items()]
    return rows


def _latency_row(outcomes: Outcomes) -> str:
    lat = outcomes.latency_ms
    return (
        f"p50 {lat.p50:.3f}  p90 {lat.p90:.3f}  p99 {lat.p99:.3f}  "
        f"p99.9 {lat.p99_9:.3f}  max {lat.max:.3f}"
    )


def render_table(report: Report) -> str:
    """Return the report as a two-column text table."""
    total = report.total
    rows: list[tuple[str, str]] = [
        ("target", f"{report.target} ({report.region})"),
        ("command", report.command),
        ("versions", ", ".join(f"{k} {v}" for k, v in report.versions.items())),
        ("workload", _workload_text(report)),
        ("load", _load_text(report)),
        ("elapsed", f"{report.elapsed_s:.2f} s" + (" (interrupted)" if report.interrupted else "")),
        (
            "requests",
            f"{total.requests:,} (ok {total.ok:,}, errors {sum(total.errors.values()):,}, "
            f"throttled {sum(total.throttles.values()):,})",
        ),
        ("throughput", f"{report.throughput:,.1f} req/s (ok {report.ok_throughput:,.1f}/s)"),
        ("latency ms", _latency_row(total)),
    ]
    if len(report.operations) > 1:
        for op, outcomes in report.operations.items():
            rows.append((f"  {op}", f"{outcomes.requests:,} req, {_latency_row(outcomes)}"))
    if total.errors or total.throttles:
        rows.append(("errors", "by code:"))
        rows += _codes(total)
    gen = report.generator
    state = "SATURATED: " + "; ".join(gen.reasons) if gen.saturated else "not saturated"
    cpu = ", ".join(f"{c:.0f}%" for c in gen.cpu_percent)
    rows.append(("generator", f"{state} (cpu {cpu})"))
    if gen.late_percent is not None and gen.send_lag_ms is not None:
        rows.append(
            (
                "send lag",
                f"{gen.late_percent:.2f}% > {gen.late_threshold_ms:g} ms late, "
                f"p99 {gen.send_lag_ms.p99:.3f} ms, max {gen.send_lag_ms.max:.3f} ms",
            )
        )
    if report.keys_created:
        rows.append(
            (
                "clean-up",
                f"{report.keys_scheduled_for_deletion} of {len(report.keys_created)} "
                "created key(s) scheduled for deletion (7 days)",
            )
        )
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


# (label, number format, metric)
_METRICS: list[tuple[str, str, Callable[[Report], float]]] = [
    ("throughput req/s", ",.1f", lambda r: r.throughput),
    ("ok req/s", ",.1f", lambda r: r.ok_throughput),
    ("requests", ",.0f", lambda r: r.total.requests),
    ("errors", ",.0f", lambda r: sum(r.total.errors.values())),
    ("throttled", ",.0f", lambda r: sum(r.total.throttles.values())),
    ("p50 ms", ",.3f", lambda r: r.total.latency_ms.p50),
    ("p90 ms", ",.3f", lambda r: r.total.latency_ms.p90),
    ("p99 ms", ",.3f", lambda r: r.total.latency_ms.p99),
    ("p99.9 ms", ",.3f", lambda r: r.total.latency_ms.p99_9),
    ("max ms", ",.3f", lambda r: r.total.latency_ms.max),
    ("mean ms", ",.3f", lambda r: r.total.latency_ms.mean),
]


def render_compare(a: Report, b: Report, a_name: str, b_name: str) -> str:
    """Return two reports side by side with the ratio B/A of every metric."""
    rows = [("", "A", "B", "B/A")]
    for label, spec, metric in _METRICS:
        va, vb = metric(a), metric(b)
        ratio = f"{vb / va:.3f}" if va else ("=" if vb == va else "-")
        rows.append((label, format(va, spec), format(vb, spec), ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        f"A: {a_name}  ({a.target}, {a.started_at})",
        f"   {a.command}",
        f"B: {b_name}  ({b.target}, {b.started_at})",
        f"   {b.command}",
        "",
    ]
    for row in rows:
        lines.append(
            f"{row[0]:<{widths[0]}}  "
            + "  ".join(f"{cell:>{w}}" for cell, w in zip(row[1:], widths[1:], strict=True))
        )
    return "\n".join(lines)

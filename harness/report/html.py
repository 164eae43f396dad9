"""report.html: a self-contained page (plotly.js inline, no CDN, no external fonts) per suite run.

Rendered from results.json alone, so `continuum report <dir>` can regenerate it any time.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.offline
from markupsafe import Markup
from plotly.subplots import make_subplots

from harness.measure.verdict import format_value
from harness.report.compare import MetricDelta, compare_docs, _fmt, _fmt_delta
from harness.report.files import atomic_write_text
from harness.report.results import ResultsFileError, load_results

REPORT_FILE = "report.html"
TEMPLATE = "report.html.j2"

OK_COLOUR, FAIL_COLOUR = "#2e9d5b", "#d64545"
FAULT_COLOUR, NOTE_COLOUR = "#f2a33a", "#5b5fc7"
ALERT_COLOUR = "#b0309a"


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    return plotly.offline.get_plotlyjs()


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["value"] = lambda v, metric: format_value(metric, v)
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.3f}%"
    env.filters["ms"] = lambda v: "—" if v is None else f"{v * 1000:.1f} ms"
    env.filters["secs"] = lambda v: "—" if v is None else f"{v:.2f} s"
    env.filters["num"] = lambda v: "—" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
    env.filters["tojson_compact"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env


def _figure(run: dict[str, Any]) -> go.Figure:
    tl = run["timeline"]
    step = tl.get("step_s") or 0.1
    x = [o + step / 2 for o in tl["offset_s"]]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.6, 0.4])
    fig.add_bar(x=x, y=[n / step for n in tl["ok"]], name="succeeded", marker_color=OK_COLOUR,
                marker_line_width=0, row=1, col=1)
    fig.add_bar(x=x, y=[n / step for n in tl["failed"]], name="failed", marker_color=FAIL_COLOUR,
                marker_line_width=0, row=1, col=1)
    ms = lambda vs: [None if v is None else v * 1000 for v in vs]  # noqa: E731
    fig.add_scatter(x=x, y=ms(tl["p50_s"]), name="p50", mode="lines", line=dict(color="#4a78c2", width=1.5),
                    connectgaps=False, row=2, col=1)
    fig.add_scatter(x=x, y=ms(tl["p99_s"]), name="p99", mode="lines", line=dict(color="#8e44ad", width=1.5),
                    connectgaps=False, row=2, col=1)

    for f in run.get("faults", []):
        start, end = f["injected_s"], f.get("reverted_s")
        label = f"⚡ {f['fault']} ({f['action']})"
        if end is not None and end > start:
            fig.add_vrect(x0=start, x1=end, fillcolor=FAULT_COLOUR, opacity=0.22, line_width=0, layer="above",
                          row="all", col=1)
        else:
            fig.add_vline(x=start, line=dict(color=FAULT_COLOUR, width=2), row="all", col=1)
        fig.add_annotation(x=start, y=1.0, xref="x", yref="paper", yanchor="bottom", xanchor="left",
                           showarrow=False, text=label, font=dict(size=11, color="#8a5a00"))
    duration = run.get("duration_s") or (tl["offset_s"][-1] + step if tl["offset_s"] else 0)
    for p in run.get("phases", []):
        if p["name"] == "overall" or p["name"].startswith("fault:"):
            continue
        if p["start_s"] > 0:
            fig.add_vline(x=p["start_s"], line=dict(color="#888", width=1, dash="dot"), row="all", col=1)
        fig.add_annotation(x=(p["start_s"] + p["end_s"]) / 2, y=-0.08, xref="x2", yref="paper", showarrow=False,
                           text=f"<i>{p['name']}</i>", font=dict(size=11, color="#666"))
    outage = run.get("longest_outage")
    if outage and outage.get("duration_s", 0) > 0.2:
        fig.add_shape(type="line", x0=outage["start_s"], x1=outage["end_s"], y0=1.0, y1=1.0, xref="x", yref="y domain",
                      line=dict(color=FAIL_COLOUR, width=4))
        fig.add_annotation(x=(outage["start_s"] + outage["end_s"]) / 2, y=0.97, xref="x", yref="y domain",
                           yanchor="top", showarrow=False, font=dict(size=10, color=FAIL_COLOUR),
                           bgcolor="rgba(255,255,255,0.85)",
                           text=f"longest outage {outage['duration_s']:.2f} s")
    _alert_marks(fig, run, duration)
    for n in run.get("notes", []):
        fig.add_annotation(x=n["offset_s"], y=0.75, xref="x", yref="y domain", text=f"✎ {n['text']}",
                           showarrow=True, arrowhead=2, ax=0, ay=-40, font=dict(size=11, color=NOTE_COLOUR),
                           arrowcolor=NOTE_COLOUR, bgcolor="rgba(255,255,255,0.85)")
    fig.update_layout(barmode="stack", bargap=0, height=560, template="plotly_white",
                      margin=dict(l=60, r=20, t=70, b=60), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.05, x=0, xanchor="left"),
                      font=dict(family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"))
    fig.update_xaxes(range=[0, duration], row=1, col=1)
    fig.update_xaxes(title_text="seconds since load started", range=[0, duration], row=2, col=1)
    fig.update_yaxes(title_text="requests/s (by start)", row=1, col=1)
    fig.update_yaxes(title_text="latency ms (ok only)", rangemode="tozero", row=2, col=1)
    return fig


def _alert_marks(fig: go.Figure, run: dict[str, Any], duration: float) -> None:
    """Each alert of the target's monitoring: a bar from firing to resolved along the top of the
    requests chart (staggered), labelled where it fired."""
    alerts = (run.get("monitoring") or {}).get("alerts") or []
    for k, a in enumerate(alerts[:12]):
        y = 0.96 - 0.07 * (k % 6)
        start = max(0.0, a["fired_s"])
        end = a["resolved_s"] if a.get("resolved_s") is not None else duration
        fig.add_shape(type="line", x0=start, x1=max(start, end), y0=y, y1=y, xref="x", yref="y domain",
                      line=dict(color=ALERT_COLOUR, width=3))
        tag = "" if a.get("resolved_s") is not None else " (still firing)"
        mark = " · no fault" if a.get("without_fault") else ""
        fig.add_annotation(x=start, y=y, xref="x", yref="y domain", xanchor="left", yanchor="bottom",
                           showarrow=False, text=f"🔔 {a['alert']}{tag}{mark}",
                           font=dict(size=10, color=ALERT_COLOUR), bgcolor="rgba(255,255,255,0.8)")


def _figure_html(run: dict[str, Any], index: int) -> Markup:
    html = _figure(run).to_html(full_html=False, include_plotlyjs=False, div_id=f"timeline-{index}",
                                config={"displaylogo": False, "responsive": True})
    return Markup(html)


def _baseline_rows(results_json: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, Any]:
    if not baseline:
        return {}
    c = compare_docs(baseline, results_json)
    rows: dict[str, Any] = {}
    for e in c.experiments:
        rows[e.experiment] = {
            "baseline_verdict": e.baseline_verdict, "candidate_verdict": e.candidate_verdict,
            "regressions": e.regressions,
            "deltas": [_delta_row(d) for d in e.deltas],
        }
    return {"rows": rows, "only_in_baseline": c.only_in_baseline, "only_in_candidate": c.only_in_candidate,
            "generated_at": baseline.get("generated_at", "")}


def _delta_row(d: MetricDelta) -> dict[str, Any]:
    return {"metric": d.metric, "baseline": _fmt(d.metric, d.baseline), "candidate": _fmt(d.metric, d.candidate),
            "delta": _fmt_delta(d.metric, d), "regressed": d.regressed, "note": d.note}


def _config_rows(config: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for k, v in config.items():
        if v in (None, [], {}, ""):
            continue
        rows.append((k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)))
    return rows


def render_html(results_json: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """The whole report page as a string: one inline plotly.js copy, a section per experiment."""
    runs = results_json.get("runs", [])
    cmp = _baseline_rows(results_json, baseline)
    sections = [
        {"run": run, "figure": _figure_html(run, k), "config": _config_rows(run.get("config", {})),
         "baseline": cmp.get("rows", {}).get(run["experiment"]) if cmp else None}
        for k, run in enumerate(runs)
    ]
    return _env().get_template(TEMPLATE).render(
        doc=results_json, sections=sections, comparison=cmp, plotly_js=Markup(_plotly_js()))


def write_html(results_json: dict[str, Any], path: Path, baseline: dict[str, Any] | None = None) -> None:
    atomic_write_text(Path(path), render_html(results_json, baseline))


def cmd_report(results_dir: Path, baseline_dir: Path | None = None) -> int:
    """`continuum report <dir>`: regenerate <dir>/report.html from <dir>/results.json.

    0 written, 2 bad input (missing or invalid results.json; message on stderr).
    """
    results_dir = Path(results_dir)
    try:
        doc = load_results(results_dir)
        baseline = load_results(Path(baseline_dir)) if baseline_dir is not None else None
    except ResultsFileError as e:
        print(f"continuum report: {e}", file=sys.stderr)
        return 2
    target = (results_dir if results_dir.is_dir() else results_dir.parent) / REPORT_FILE
    write_html(doc, target, baseline)
    print(f"wrote {target}")
    return 0

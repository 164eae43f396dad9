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
import yaml
import plotly.offline
from markupsafe import Markup
from plotly.subplots import make_subplots

from harness.measure.verdict import format_value
from harness.report.drill import drill_marks
from harness.report.compare import MetricDelta, compare_docs, _fmt, _fmt_delta
from harness.report.files import atomic_write_text
from harness.report.results import ResultsFileError, load_results
from harness.report.versions import versions_figure

REPORT_FILE = "report.html"
TEMPLATE = "report.html.j2"

OK_COLOUR, FAIL_COLOUR = "#2e9d5b", "#d64545"
FAULT_COLOUR, NOTE_COLOUR = "#f2a33a", "#5b5fc7"
STALL_COLOUR = "#7a3db8"
OP_COLOURS = ("#4a78c2", "#d35400", "#16a085", "#8e44ad", "#7f8c8d")
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


def _shade_faults(fig: go.Figure, run: dict[str, Any], label: bool = True) -> None:
    """Each fault's window on every row: from when it took effect to when it was reverted, with a
    lighter band before it for the time between issuing it and it taking effect (its landing)."""
    for f in run.get("faults", []):
        start, end = f["injected_s"], f.get("reverted_s")
        issued = f.get("issued_s")
        if issued is not None and start - issued > 0.02:
            fig.add_vrect(x0=issued, x1=start, fillcolor=FAULT_COLOUR, opacity=0.10, line_width=0, layer="above",
                          row="all", col=1)
        if end is not None and end > start:
            fig.add_vrect(x0=start, x1=end, fillcolor=FAULT_COLOUR, opacity=0.22, line_width=0, layer="above",
                          row="all", col=1)
        else:
            fig.add_vline(x=start, line=dict(color=FAULT_COLOUR, width=2), row="all", col=1)
        if label:
            fig.add_annotation(x=issued if issued is not None else start, y=1.0, xref="x", yref="paper",
                               yanchor="bottom", xanchor="left", showarrow=False,
                               text=f"⚡ {f['fault']} ({f['action']})", font=dict(size=11, color="#8a5a00"))


def _mark_interval(fig: go.Figure, interval: dict | None, what: str, colour: str, y: float, row: int,
                   xref: str = "x", yref: str = "y domain") -> None:
    """A bar over the longest outage or stall (when long enough to see) with its length."""
    if not interval or interval.get("duration_s", 0) <= 0.2:
        return
    fig.add_shape(type="line", x0=interval["start_s"], x1=interval["end_s"], y0=y, y1=y, xref=xref, yref=yref,
                  line=dict(color=colour, width=4), row=row, col=1)
    fig.add_annotation(x=(interval["start_s"] + interval["end_s"]) / 2, y=y - 0.03, xref=xref, yref=yref,
                       yanchor="top", showarrow=False, font=dict(size=10, color=colour),
                       bgcolor="rgba(255,255,255,0.85)", text=f"{what} {interval['duration_s']:.2f} s",
                       row=row, col=1)


def _layout(fig: go.Figure, duration: float, height: int) -> None:
    fig.update_layout(barmode="stack", bargap=0, height=height, template="plotly_white",
                      margin=dict(l=60, r=20, t=70, b=60), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.05, x=0, xanchor="left"),
                      font=dict(family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"))
    fig.update_xaxes(range=[0, duration])


def _duration(run: dict[str, Any]) -> float:
    tl = run["timeline"]
    step = tl.get("step_s") or 0.1
    return run.get("duration_s") or (tl["offset_s"][-1] + step if tl["offset_s"] else 0)


def _figure(run: dict[str, Any]) -> go.Figure:
    tl = run["timeline"]
    step = tl.get("step_s") or 0.1
    x = [o + step / 2 for o in tl["offset_s"]]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.6, 0.4])
    fig.add_bar(x=x, y=[n / step for n in tl["ok"]], name="succeeded", marker_color=OK_COLOUR,
                marker_line_width=0, row=1, col=1)
    fig.add_bar(x=x, y=[n / step for n in tl["failed"]], name="failed", marker_color=FAIL_COLOUR,
                marker_line_width=0, row=1, col=1)
    fig.add_scatter(x=x, y=_ms(tl["p50_s"]), name="p50", mode="lines", line=dict(color="#4a78c2", width=1.5),
                    connectgaps=False, row=2, col=1)
    fig.add_scatter(x=x, y=_ms(tl["p99_s"]), name="p99", mode="lines", line=dict(color="#8e44ad", width=1.5),
                    connectgaps=False, row=2, col=1)
    _shade_faults(fig, run)
    for p in run.get("phases", []):
        if p["name"] == "overall" or p["name"].startswith("fault:"):
            continue
        if p["start_s"] > 0:
            fig.add_vline(x=p["start_s"], line=dict(color="#888", width=1, dash="dot"), row="all", col=1)
        fig.add_annotation(x=(p["start_s"] + p["end_s"]) / 2, y=-0.08, xref="x2", yref="paper", showarrow=False,
                           text=f"<i>{p['name']}</i>", font=dict(size=11, color="#666"))
    _mark_interval(fig, run.get("longest_outage"), "longest outage", FAIL_COLOUR, 1.0, 1)
    _mark_interval(fig, run.get("longest_stall"), "longest stall", STALL_COLOUR, 0.86, 1)
    _alert_marks(fig, run, _duration(run))
    drill_marks(fig, run)
    for n in run.get("notes", []):
        fig.add_annotation(x=n["offset_s"], y=0.75, xref="x", yref="y domain", text=f"✎ {n['text']}",
                           showarrow=True, arrowhead=2, ax=0, ay=-40, font=dict(size=11, color=NOTE_COLOUR),
                           arrowcolor=NOTE_COLOUR, bgcolor="rgba(255,255,255,0.85)")
    _layout(fig, _duration(run), 560)
    fig.update_xaxes(title_text="seconds since load started", row=2, col=1)
    fig.update_yaxes(title_text="requests/s (by start)", row=1, col=1)
    fig.update_yaxes(title_text="latency ms (ok, from due)", rangemode="tozero", row=2, col=1)
    return fig


def _ms(values: list) -> list:
    return [None if v is None else v * 1000 for v in values]


def _operations_figure(run: dict[str, Any]) -> go.Figure | None:
    """One row per operation (its requests/s, its longest outage and stall marked), then every
    operation's p99: a write outage cannot hide behind successful reads."""
    tl = run["timeline"]
    ops = tl.get("operations") or {}
    if len(ops) < 2:
        return None
    step = tl.get("step_s") or 0.1
    x = [o + step / 2 for o in tl["offset_s"]]
    names = sorted(ops)
    rows = len(names) + 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[*names, "p99 latency by operation (ok, from due)"])
    overall = next((p for p in run.get("phases", []) if p["name"] == "overall"), {})
    by_op = {o["operation"]: o for o in overall.get("operations", [])}
    for k, op in enumerate(names, start=1):
        steps = ops[op]
        fig.add_bar(x=x, y=[n / step for n in steps["ok"]], name="succeeded", marker_color=OK_COLOUR,
                    marker_line_width=0, legendgroup="ok", showlegend=k == 1, row=k, col=1)
        fig.add_bar(x=x, y=[n / step for n in steps["failed"]], name="failed", marker_color=FAIL_COLOUR,
                    marker_line_width=0, legendgroup="failed", showlegend=k == 1, row=k, col=1)
        fig.update_yaxes(title_text="req/s", row=k, col=1)
        m = by_op.get(op, {})
        _mark_interval(fig, m.get("longest_outage"), "longest outage", FAIL_COLOUR, 1.0, k)
        _mark_interval(fig, m.get("longest_stall"), "longest stall", STALL_COLOUR, 0.80, k)
    for j, op in enumerate(names):
        fig.add_scatter(x=x, y=_ms(ops[op]["p99_s"]), name=f"p99 {op}", mode="lines",
                        line=dict(color=OP_COLOURS[j % len(OP_COLOURS)], width=1.5), connectgaps=False,
                        row=rows, col=1)
    fig.update_yaxes(title_text="ms", rangemode="tozero", row=rows, col=1)
    fig.update_xaxes(title_text="seconds since load started", row=rows, col=1)
    _shade_faults(fig, run, label=False)
    _layout(fig, _duration(run), 200 * rows + 120)
    return fig


def _figure_html(fig: go.Figure | None, div_id: str) -> Markup | None:
    if fig is None:
        return None
    return Markup(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                              config={"displaylogo": False, "responsive": True}))


_SPREAD_ROWS = (("availability", "availability %", lambda v: v * 100),
                ("time_to_recover", "time to recover s", lambda v: v),
                ("latency_p99", "p99 latency ms", lambda v: v * 1000),
                ("longest_outage", "longest outage s", lambda v: v))


def _trial_figure(ts: dict[str, Any]) -> go.Figure:
    """The trials side by side: one row per metric, one dot per trial (red when that trial
    missed the metric's assertion), the 95% interval as a band, the threshold dashed."""
    from harness.report.results import number

    fig = make_subplots(rows=len(_SPREAD_ROWS), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[label for _, label, _ in _SPREAD_ROWS])
    asserted = {a["metric"]: a for a in ts.get("assertions", []) if a.get("kind") == "slo"}
    n = int(ts.get("trials", 0))
    for row, (metric, label, scale) in enumerate(_SPREAD_ROWS, start=1):
        m = ts.get("metrics", {}).get(metric) or {}
        a = asserted.get(metric)
        xs, ys, colours, text = [], [], [], []
        never = []
        for k, v in enumerate(m.get("values", [])):
            v = number(v)
            if v is None:
                continue
            passed = (a or {}).get("passed", [None] * n)[k] if a else None
            if v == float("inf"):
                never.append(k + 1)
                continue
            xs.append(k + 1)
            ys.append(scale(v))
            colours.append("#7d8796" if a is None else FAIL_COLOUR if passed is False else OK_COLOUR)  # grey: not asserted
            text.append(f"trial {k + 1}: {format_value(metric, v)}")
        fig.add_scatter(x=xs, y=ys, mode="markers", marker=dict(color=colours, size=9), text=text,
                        hoverinfo="text", showlegend=False, row=row, col=1)
        iv = m.get("interval")
        if iv and number(iv["low"]) is not None:
            lo, hi = number(iv["low"]), number(iv["high"])
            top = scale(hi) if hi != float("inf") else (max(ys) if ys else scale(lo)) * 1.5
            fig.add_hrect(y0=scale(lo), y1=top, fillcolor="#4a78c2", opacity=0.15, line_width=0, row=row, col=1)
            est = number(iv["estimate"])
            if est is not None and est != float("inf"):
                fig.add_hline(y=scale(est), line=dict(color="#4a78c2", width=1), row=row, col=1)
        if a is not None:
            fig.add_hline(y=scale(a["threshold"]), line=dict(color="#8a5a00", width=1.5, dash="dash"),
                          annotation_text=f"required {a['text']}", annotation_position="top left",
                          row=row, col=1)
        for k in never:
            fig.add_annotation(x=k, y=1.0, xref=f"x{row if row > 1 else ''}", yref=f"y{row if row > 1 else ''} domain",
                               text="never", showarrow=False, font=dict(color=FAIL_COLOUR, size=11))
    fig.update_layout(height=170 * len(_SPREAD_ROWS) + 60, template="plotly_white",
                      margin=dict(l=60, r=20, t=40, b=40),
                      font=dict(family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"))
    fig.update_xaxes(dtick=1, range=[0.5, max(n, 1) + 0.5])
    fig.update_xaxes(title_text="trial", row=len(_SPREAD_ROWS), col=1)
    return fig


def _interval_cell(metric: str, iv: dict[str, Any] | None) -> str:
    from harness.report.results import number

    if not iv:
        return "—"

    def show(v: Any) -> str:
        x = number(v)
        return "never" if x == float("inf") else format_value(metric, x)

    return f"{show(iv['estimate'])} [{show(iv['low'])}, {show(iv['high'])}]"


def _trial_sections(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for k, ts in enumerate(doc.get("trial_sets", [])):
        rows = [{**a, "interval_text": "invariant" if a["method"] == "invariant" else _interval_cell(a["metric"], a["interval"]),
                 "share_text": "—" if not a.get("pass_share") else
                 f"{a['pass_share']['low'] * 100:.0f}–{a['pass_share']['high'] * 100:.0f}%"}
                for a in ts.get("assertions", [])]
        fig = _trial_figure(ts).to_html(full_html=False, include_plotlyjs=False, div_id=f"trials-{k}",
                                        config={"displaylogo": False, "responsive": True})
        out.append({"ts": ts, "rows": rows, "figure": Markup(fig), "wall_total": sum(w or 0 for w in ts.get("wall_s", []))})
    return out


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


def _config_yaml(run: dict[str, Any]) -> str:
    """The experiment as the user wrote it (the file's text); a run with no file (built in code)
    gets its configuration as YAML instead."""
    text = run.get("source_yaml")
    if text:
        return text
    return yaml.safe_dump(run.get("config", {}), sort_keys=False, allow_unicode=True, width=100)


def _overview(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per experiment: verdict, what failed (assertions, else the run's reasons)."""
    rows = []
    for k, run in enumerate(runs, start=1):
        failed = [a["message"] for a in run.get("assertions", []) if a.get("passed") is False]
        why = failed if run["verdict"] == "FAIL" and failed and not run.get("aborted") else list(run.get("reasons", []))
        ov = next((p for p in run.get("phases", []) if p["name"] == "overall"), {})
        rows.append({"anchor": f"run-{k}", "experiment": run["experiment"], "verdict": run["verdict"],
                     "why": why, "availability": ov.get("availability"), "p99": ov.get("latency_p99_s"),
                     "ttr": run.get("time_to_recover_s"),
                     "stall": (run.get("longest_stall") or {}).get("duration_s"),
                     "unrecovered": any(not f.get("recovered", True) for f in run.get("faults", []))})
    return rows


def render_html(results_json: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """The whole report page as a string: one inline plotly.js copy, a section per experiment."""
    runs = results_json.get("runs", [])
    cmp = _baseline_rows(results_json, baseline)
    trial_of: dict[str, str] = {}
    for ts in results_json.get("trial_sets", []):
        for k, rid in enumerate(ts.get("run_ids", [])):
            trial_of[rid] = f"trial {k + 1} of {ts.get('trials')}"
    sections = [
        {"run": run, "figure": _figure_html(_figure(run), f"timeline-{k}"),
         "operations_figure": _figure_html(_operations_figure(run), f"operations-{k}"),
         "versions_figure": _figure_html(versions_figure(run), f"versions-{k}"),
         "config_yaml": _config_yaml(run),
         # a trial is judged in its set: a baseline comparison of one trial would mislead
         "baseline": cmp.get("rows", {}).get(run["experiment"]) if cmp and run.get("run_id") not in trial_of else None,
         "trial": trial_of.get(run.get("run_id"))}
        for k, run in enumerate(runs)
    ]
    return _env().get_template(TEMPLATE).render(
        doc=results_json, sections=sections, overview=_overview(runs), comparison=cmp,
        plotly_js=Markup(_plotly_js()), trial_sets=_trial_sections(results_json))


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

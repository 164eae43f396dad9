"""The report's "versions" section: which release answered, over the run (results.json
`versions`, the HTML partial templates/_versions.html.j2 and its figure).

Kept apart from results.py and html.py so sections of other drills (backup/restore markers)
merge without touching the same lines.
"""

from __future__ import annotations

from typing import Any

from harness.measure.versions import VersionSummary

PALETTE = ("#7f8c8d", "#2e86de", "#27ae60", "#e67e22", "#8e44ad", "#c0392b")
MIXED_COLOUR = "rgba(230, 126, 34, 0.15)"


def versions_json(v: VersionSummary | None) -> dict[str, Any] | None:
    if v is None:
        return None
    names = list(v.versions)
    return {
        "versions": names,
        "spans": [{"version": s.version, "first_s": round(s.first_s, 6), "last_s": round(s.last_s, 6),
                   "answers": s.answers, "failed": s.failed} for s in v.spans],
        "mixed_window_s": round(v.mixed_window_s, 6),
        "mixed_start_s": None if v.mixed_start_s is None else round(v.mixed_start_s, 6),
        "mixed_end_s": None if v.mixed_end_s is None else round(v.mixed_end_s, 6),
        "step_s": (v.steps[1].t_s - v.steps[0].t_s) if len(v.steps) > 1 else 1.0,
        "offset_s": [s.t_s for s in v.steps],
        "counts": {n: [dict(s.counts).get(n, 0) for s in v.steps] for n in names},
    }


def versions_figure(run: dict[str, Any]) -> Any:
    """Answers per second by version (stacked), the mixed-version window shaded, the upgrade
    faults' windows marked; None without versions. (plotly imported here: results.json is
    written without it.)"""
    import plotly.graph_objects as go

    v = run.get("versions")
    if not v or not v.get("offset_s"):
        return None
    step = v.get("step_s") or 1.0
    x = [o + step / 2 for o in v["offset_s"]]
    fig = go.Figure()
    for k, name in enumerate(v["versions"]):
        fig.add_bar(x=x, y=[n / step for n in v["counts"][name]], name=f"version {name}",
                    marker_color=PALETTE[k % len(PALETTE)], marker_line_width=0)
    if v.get("mixed_start_s") is not None and v["mixed_window_s"] > 0:
        fig.add_vrect(x0=v["mixed_start_s"], x1=v["mixed_end_s"], fillcolor=MIXED_COLOUR, line_width=0,
                      annotation_text=f"mixed versions {v['mixed_window_s']:.1f} s",
                      annotation_position="top left")
    for f in run.get("faults", []):
        if f.get("action") == "service.upgrade":
            fig.add_vline(x=f["injected_s"], line=dict(color="#555", width=1, dash="dot"))
            if f.get("reverted_s") is not None:
                fig.add_vline(x=f["reverted_s"], line=dict(color="#555", width=1, dash="dot"))
    fig.update_layout(barmode="stack", bargap=0, height=260, template="plotly_white",
                      margin=dict(l=60, r=20, t=30, b=40), legend=dict(orientation="h", y=1.15))
    fig.update_xaxes(title_text="seconds since load started", range=[0, run.get("duration_s") or None])
    fig.update_yaxes(title_text="answers/s by version")
    return fig

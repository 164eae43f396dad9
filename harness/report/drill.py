"""A backup and restore drill on the report's timeline: the backup's consistent point, the
disaster, the restore healthy, and the RPO and RTO as spans (harness.measure.rpo defines them).
Kept apart from html.py so other sections (an upgrade's versions) merge beside it."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

DRILL_COLOUR = "#0b7285"
LOSS_COLOUR = "rgba(201, 42, 42, 0.10)"
RTO_COLOUR = "rgba(11, 114, 133, 0.10)"


def drill_marks(fig: go.Figure, run: dict[str, Any]) -> None:
    d = run.get("drill")
    if not d:
        return
    marks = [(d.get("consistent_from_s"), "◉ backup's consistent point"),
             (d.get("disaster_s"), "✖ disaster"), (d.get("restored_s"), "✔ restored (all healthy)")]
    for k, (x, text) in enumerate(marks):
        if x is None:
            continue
        fig.add_vline(x=x, line=dict(color=DRILL_COLOUR, width=1.5, dash="dash"), row="all", col=1)
        fig.add_annotation(x=x, y=0.62 - 0.1 * k, xref="x", yref="y domain", xanchor="left",
                           showarrow=False, text=text, font=dict(size=10, color=DRILL_COLOUR),
                           bgcolor="rgba(255,255,255,0.85)")
    c, dis = d.get("consistent_from_s"), d.get("disaster_s")
    if c is not None and dis is not None and d.get("rpo_s") is not None:
        fig.add_vrect(x0=c, x1=c + d["rpo_s"], fillcolor=LOSS_COLOUR, line_width=0, row=1, col=1,
                      annotation_text=f"RPO {d['rpo_s']:.1f} s, {d.get('rpo_writes')} writes",
                      annotation_position="bottom left", annotation_font_size=10)
    if dis is not None and d.get("rto_s") is not None:
        fig.add_vrect(x0=dis, x1=dis + d["rto_s"], fillcolor=RTO_COLOUR, line_width=0, row=1, col=1,
                      annotation_text=f"RTO {d['rto_s']:.1f} s", annotation_position="top left",
                      annotation_font_size=10)

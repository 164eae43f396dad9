"""The terminal: a live panel while a run is going (TTY), one plain line per event otherwise.

`ConsoleReporter(events)` listens to the event catalogue; `print_summary(results)` prints the
end-of-suite table. In plain mode (CI logs, no TTY) progress lines are throttled to one every
PROGRESS_EVERY_S seconds; every other event prints exactly one line.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from harness.events import (
    Aborted,
    AlertFired,
    AlertResolved,
    Events,
    FaultInjected,
    FaultReverted,
    Message,
    NoteAdded,
    PhaseStarted,
    ProbeChanged,
    Progress,
    RoleResolved,
    RunEnded,
    RunStarted,
)
from harness.measure.result import Result, Verdict, worst_verdict
from harness.measure.verdict import format_value, operation_ttr

PROGRESS_EVERY_S = 5.0
VERDICT_STYLE = {Verdict.PASS: "bold green", Verdict.FAIL: "bold red", Verdict.ERROR: "bold magenta",
                 Verdict.INCONCLUSIVE: "bold yellow"}


def _name(x: Any) -> str:
    return getattr(x, "name", None) or str(x)


class ConsoleReporter:
    """Live (rich) or plain console output driven by `events`. `live=None`: live iff stdout is a TTY."""

    def __init__(self, events: Events, live: bool | None = None, console: Console | None = None):
        self.console = console or Console()
        if live is None:
            live = sys.stdout.isatty() if console is None else self.console.is_terminal
        self.live = live
        self._events = events
        self._lock = threading.RLock()
        self._live: Live | None = None
        self._last_progress = float("-inf")
        self._t0: float | None = None
        self.state: dict[str, Any] = {"experiment": "", "run_id": "", "phase": "", "elapsed_s": 0.0,
                                      "remaining_s": None, "rps": None, "error_rate": None,
                                      "active_faults": (), "plan_s": None}
        events.subscribe(self.on_event, name="console")

    def on_event(self, ev: Any) -> None:
        """One entry point per event type (typed events; see harness.events)."""
        if isinstance(ev, RunStarted):
            self._on_run_start(ev.experiment, ev.run_id, ev.t0, ev.plan_s)
        elif isinstance(ev, PhaseStarted):
            self._on_phase(ev.name, ev.t)
        elif isinstance(ev, FaultInjected):
            self._on_fault_injected(ev.fault, ev.targets, ev.t)
        elif isinstance(ev, FaultReverted):
            self._on_fault_reverted(ev.fault, ev.targets, ev.t, ev.confirmed, ev.detail)
        elif isinstance(ev, Progress):
            self._on_progress(ev.t, ev.elapsed_s, ev.remaining_s, ev.rps, ev.error_rate,
                              ev.active_faults, ev.phase)
        elif isinstance(ev, Aborted):
            self._on_abort(ev.reason, ev.t)
        elif isinstance(ev, NoteAdded):
            self._on_note(ev.note)
        elif isinstance(ev, RunEnded):
            self._on_run_end(ev.record, ev.result)
        elif isinstance(ev, RoleResolved):
            who = ", ".join(ev.holders) or "nobody"
            self._line(ev.t if self._t0 is not None else None,
                       f"role {ev.role} → {who}" + ("" if ev.fault else " (checked at start)"), "dim")
        elif isinstance(ev, Message):
            self._on_message(ev.text, ev.level)
        elif isinstance(ev, AlertFired):
            a = ev.alert
            late = f", seen {a.seen_t - a.fired_t:.1f} s later" if a.seen_t - a.fired_t >= 0.5 else ""
            self._line(a.fired_t, f"🔔 alert {a.describe()} firing{late}", "magenta")
        elif isinstance(ev, AlertResolved):
            self._line(ev.alert.resolved_t, f"🔕 alert {ev.alert.describe()} resolved", "dim magenta")
        elif isinstance(ev, ProbeChanged):
            s = ev.sample
            state = {True: "ok", False: "FAILED", None: "unknown"}[s.ok]
            style = {True: "green", False: "bold red", None: "yellow"}[s.ok]
            self._line(s.t, f"probe {s.probe} ({ev.use}) {state}: {s.detail}", style)

    # ── helpers ──
    def _offset(self, t: float | None) -> str:
        if t is None or self._t0 is None:
            return "[   --  ]"
        return f"[{t - self._t0:7.1f}s]"

    def _line(self, t: float | None, text: str, style: str = "") -> None:
        with self._lock:
            self.console.print(Text(f"{self._offset(t)} ", style="dim") + Text(text, style=style),
                               highlight=False, soft_wrap=True)
            self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._panel())

    def _panel(self) -> Panel:
        s = self.state
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        remaining = "—" if s["remaining_s"] is None else f"{s['remaining_s']:.0f} s"
        grid.add_row("phase", Text(s["phase"] or "—", style="bold"))
        grid.add_row("elapsed / remaining", f"{s['elapsed_s']:.0f} s / {remaining}")
        grid.add_row("load", "—" if s["rps"] is None else f"{s['rps']:.0f} req/s")
        er = s["error_rate"]
        grid.add_row("errors", Text("—" if er is None else f"{er * 100:.2f}%",
                                    style="bold red" if er else "green"))
        faults = ", ".join(s["active_faults"]) or "none"
        grid.add_row("active faults", Text(faults, style="bold yellow" if s["active_faults"] else ""))
        return Panel(Group(grid), title=f"[bold]{s['experiment']}[/] [dim]{s['run_id']}[/]", border_style="blue",
                     expand=False)

    # ── event handlers ──
    def _on_run_start(self, experiment: Any, run_id: str, t0: float, plan_s: float | None = None, **_: Any) -> None:
        with self._lock:
            self._t0 = t0
            self.state.update(experiment=_name(experiment), run_id=run_id, plan_s=plan_s, phase="",
                              elapsed_s=0.0, remaining_s=plan_s, rps=None, error_rate=None, active_faults=())
            self._last_progress = float("-inf")
            if self.live and self._live is None:
                self._live = Live(self._panel(), console=self.console, refresh_per_second=4, transient=True)
                self._live.start()
        plan = f", planned {plan_s:.0f} s" if plan_s else ""
        self._line(t0, f"▶ {_name(experiment)} (run {run_id}{plan})", "bold")

    def _on_phase(self, name: str, t: float, **_: Any) -> None:
        with self._lock:
            self.state["phase"] = name
        self._line(t, f"phase {name}", "cyan")

    def _on_fault_injected(self, fault: Any, targets: Sequence[str] = (), t: float | None = None, **_: Any) -> None:
        with self._lock:
            self.state["active_faults"] = tuple(self.state["active_faults"]) + (_name(fault),)
        action = getattr(fault, "action", "")
        self._line(t, f"⚡ fault {_name(fault)} ({action}) → {', '.join(targets) or '—'}", "yellow")

    def _on_fault_reverted(self, fault: Any, targets: Sequence[str] = (), t: float | None = None,
                           confirmed: bool = True, detail: str = "", **_: Any) -> None:
        with self._lock:
            active = list(self.state["active_faults"])
            if _name(fault) in active:
                active.remove(_name(fault))
            self.state["active_faults"] = tuple(active)
        tail = "" if confirmed else f" (NOT confirmed: {detail})" if detail else " (NOT confirmed)"
        self._line(t, f"↺ reverted {_name(fault)}{tail}", "green" if confirmed else "bold red")

    def _on_progress(self, t: float | None = None, elapsed_s: float = 0.0, remaining_s: float | None = None,
                     rps: float | None = None, error_rate: float | None = None,
                     active_faults: Sequence[str] = (), phase: str | None = None, **_: Any) -> None:
        with self._lock:
            self.state.update(elapsed_s=elapsed_s, remaining_s=remaining_s, rps=rps, error_rate=error_rate,
                              active_faults=tuple(active_faults))
            if phase:
                self.state["phase"] = phase
            if self._live is not None:
                self._refresh()
                return
            if elapsed_s - self._last_progress < PROGRESS_EVERY_S:
                return
            self._last_progress = elapsed_s
        er = "—" if error_rate is None else f"{error_rate * 100:.2f}%"
        load = "—" if rps is None else f"{rps:.0f} req/s"
        faults = ", ".join(active_faults) or "none"
        self._line(t, f"{load}, errors {er}, faults {faults}", "dim")

    def _on_abort(self, reason: str, t: float | None = None, **_: Any) -> None:
        self._line(t, f"■ abort: {reason}", "bold red")

    def _on_note(self, note: Any, **_: Any) -> None:
        self._line(getattr(note, "t", None), f"✎ {getattr(note, 'author', '')}: {getattr(note, 'text', note)}", "blue")

    def _on_message(self, text: str, level: str = "info", **_: Any) -> None:
        style = {"warning": "yellow", "error": "bold red"}.get(level, "")
        self._line(None, f"{level}: {text}" if level != "info" else text, style)

    def _on_run_end(self, record: Any = None, result: Any = None, **_: Any) -> None:
        self._stop_live()
        t_end = getattr(record, "t_end", None)
        if result is not None:
            v = getattr(result, "verdict", None)
            reasons = "; ".join(getattr(result, "reasons", ())) or ""
            self._line(t_end, f"■ {getattr(result, 'name', '')} {v}" + (f": {reasons}" if reasons else ""),
                       VERDICT_STYLE.get(v, "bold"))
        else:
            self._line(t_end, "■ run ended", "bold")

    # ── lifetime ──
    def _stop_live(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def close(self) -> None:
        self._stop_live()
        self._events.unsubscribe(self.on_event)

    def __enter__(self) -> "ConsoleReporter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


COLUMNS = (("experiment", "left"), ("verdict", "left"), ("availability", "right"), ("p99", "right"),
           ("throughput", "right"), ("TTR", "right"), ("longest outage", "right"),
           ("longest stall", "right"), ("lost writes", "right"))


def _cells(pm, ttr: float | None, never: bool) -> list[str]:
    outage = pm.longest_outage.duration_s if pm.longest_outage else None
    stall = pm.longest_stall.duration_s if pm.longest_stall else None
    return [format_value("availability", pm.availability, 3), format_value("latency_p99", pm.latency_p99_s),
            format_value("throughput", pm.throughput_rps),
            "never" if never else format_value("time_to_recover", ttr),
            format_value("longest_outage", outage), format_value("longest_stall", stall)]


def summary_table(results: Sequence[Result]) -> Table:
    """One row per experiment, then one per operation when a run sent more than one kind of
    request (a write outage must not hide behind successful reads)."""
    verdict = worst_verdict(r.verdict for r in results)
    t = Table(title=f"Continuum: {verdict.value}", title_style=VERDICT_STYLE[verdict], show_lines=False)
    for col, justify in COLUMNS:
        t.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in results:
        o = r.overall
        t.add_row(r.name, Text(r.verdict.value, style=VERDICT_STYLE[r.verdict]),
                  *_cells(o, r.time_to_recover_s, bool(r.unrecovered)),
                  format_value("lost_writes", r.durability.lost))
        if len(r.operations) > 1:
            for op in r.operations:
                pm = o.for_operation(op)
                if pm is None:
                    continue
                ttr, never = operation_ttr(r, op)
                t.add_row(Text(f"  · {op}", style="dim"), "", *_cells(pm, ttr, never), "", style="dim")
    return t


def print_summary(results: Sequence[Result], console: Console | None = None) -> None:
    """The end-of-suite table, then the reasons of every run that did not pass.

    Outside a terminal (CI logs) nothing is cut or folded: the table gets the width it needs
    and each reason stays on one line, whatever the width rich guesses for a pipe (80)."""
    console = console or Console()
    table = summary_table(results)
    width = console.width
    if not console.is_terminal:     # rich caps print(width=) at the console's: widen it instead
        console.width = max(width, Measurement.get(console, console.options.update_width(10_000), table).maximum)
    try:
        console.print(table)
    finally:
        console.width = width
    for r in results:
        for reason in r.reasons:
            console.print(Text(f"  {r.name}: ", style="bold") + Text(reason, style=VERDICT_STYLE[r.verdict]),
                          highlight=False, soft_wrap=not console.is_terminal)


# ─────────────────────────────── trial sets ───────────────────────────────

def trial_summary_table(sets: Sequence[Any]) -> Table:
    """One row per assertion of every trial set: the interval, the share of trials that passed,
    the verdict and, when undecided, about how many trials would decide."""
    verdict = worst_verdict(ts.verdict for ts in sets)
    t = Table(title=f"Continuum: {verdict.value} (trial sets, 95% intervals)", title_style=VERDICT_STYLE[verdict])
    for col, justify in (("experiment", "left"), ("assertion", "left"), ("interval", "right"),
                         ("required", "left"), ("trials passed", "right"), ("verdict", "left"),
                         ("to decide", "right")):
        t.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    from harness.measure.trialset import interval_text

    for ts in sets:
        first = True
        for a in ts.assertions:
            iv = "invariant" if a.method == "invariant" else interval_text(a.metric, a.interval)
            t.add_row(f"{ts.name} ({len(ts.trials)}×, {ts.stack})" if first else "", a.name, iv, a.text,
                      f"{a.passes}/{a.judged}", Text(a.verdict.value, style=VERDICT_STYLE[a.verdict]),
                      f"~{a.trials_needed}" if a.trials_needed else "")
            first = False
        if not ts.assertions:
            t.add_row(ts.name, "", "", "", "", Text(ts.verdict.value, style=VERDICT_STYLE[ts.verdict]), "")
    return t


def print_trial_summary(sets: Sequence[Any], console: Console | None = None) -> None:
    """The trial-set table, then each set's verdict and reasons; says when a verdict rests on
    too few trials."""
    console = console or Console()
    if not sets:
        console.print("no trials ran")
        return
    console.print(trial_summary_table(sets))
    for ts in sets:
        wall = f", {sum(ts.wall_s):.0f} s" if ts.wall_s else ""
        console.print(Text(f"  {ts.name}: ", style="bold") +
                      Text(f"{ts.verdict.value} over {len(ts.judged)} judged of {len(ts.trials)} trials{wall}",
                           style=VERDICT_STYLE[ts.verdict]), highlight=False)
        for reason in ts.reasons:
            style = "yellow" if reason.startswith("rests on") else VERDICT_STYLE[ts.verdict]
            console.print(Text(f"    {reason}", style=style), highlight=False)

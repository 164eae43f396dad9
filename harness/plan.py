"""`continuum validate | schema | plan`: check files and show what a run would do, touching nothing.

Nothing here (or in what it imports) talks to Docker; the tests check that `docker` is never
imported. Exit codes: 0 all good, 2 bad input (the `InputError` convention).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from harness.errors import InputError
from harness.loader import experiment_files, load_experiment, load_target
from harness.model.experiment import Experiment
from harness.model.target import COMPOSE_FILES, OVERLAY_FILE, Target
from harness.schema import experiment_schema
from harness.yamlsafe import load_yaml

EXIT_OK = 0
EXIT_INPUT = 2


def _s(seconds: float) -> str:
    """Seconds for people: 0.5 → 500ms, 20 → 20s, 90 → 1m30s."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    if seconds < 120 or seconds % 1:
        return f"{seconds:g}s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")


def render_plan(exp: Experiment) -> str:
    """The timeline `exp` would run, as text. Reads nothing, touches nothing."""
    lines = [f"Experiment  {exp.name}", f"  {exp.description}"]
    if exp.source:
        lines.append(f"  file      {exp.source}")
    lines.append(f"  target    {exp.target.name} ({exp.target.root})")
    ld = exp.load
    host = f"entry point {ld.host}" if ld.host else "the target's first entry point"
    pace = (f"open loop, {ld.rate:g} requests/s due, at most {ld.users} in flight" if ld.mode == "open"
            else f"{ld.users} users")
    lines.append(f"  load      profile {ld.profile}: {pace}, spawn {ld.spawn_rate:g}/s, "
                 f"request timeout {_s(ld.request_timeout_s)}, via {host}")
    lines.append(f"  duration  {_s(exp.duration_s)} of load")
    lines.append("")
    lines.append("Timeline (offsets from the start of load)")

    faults = sorted(exp.faults, key=lambda f: (f.at_s, f.name))
    first = faults[0].at_s if faults else exp.duration_s
    last_end = max((f.end_s for f in faults), default=0.0)
    width = max([len(f.name) for f in faults] + [len("recovery")])
    rows: list[tuple[str, str, str]] = []
    if first > 0:
        steady = "; steady state: " + ", ".join(f"{a.key} {a.text}" for a in exp.steady_state) \
            if exp.steady_state else ""
        rows.append((f"{_s(0)} - {_s(first)}", "baseline", f"no faults{steady}"))
    for f in faults:
        when = f"{_s(f.at_s)} - {_s(f.end_s)}" if f.for_s else f"{_s(f.at_s)}"
        rows.append((when, f.name, f"{f.action}: {f.plan_line()}"))
    if faults and last_end < exp.duration_s:
        rows.append((f"{_s(last_end)} - {_s(exp.duration_s)}", "recovery",
                     f"faults reverted; recovered once a {_s(exp.recovery_window_s)} window "
                     "meets the SLO"))
    when_w = max(len(r[0]) for r in rows) if rows else 0
    for when, name, what in rows:
        lines.append(f"  {when:>{when_w}}  {name:<{width}}  {what}")
    from harness.target.roles import roles_used

    used = roles_used(exp)
    if used:
        lines.append("")
        lines.append("Roles")
        for name in used:
            role = exp.target.role(name)
            if role is not None:
                lines.append(f"  {name}: {role.describe()}")
    d = exp.target.durability
    if d is not None and d.read is not None:
        lines.append("")
        lines.append(f"Durability: after load stops, {d.read.describe()}"
                     + (f"; invariants {', '.join(i.name for i in d.invariants)}"
                        if d.invariants else ""))
    lines.append("")
    lines.append("SLO (over the whole run unless the key names an operation or a phase)")
    for a in exp.slo:
        lines.append(f"  {a.key:<18} {a.text}")
    if exp.abort_if:
        lines.append("")
        lines.append(f"Abort if availability < {exp.abort_if.availability_below * 100:g}% over "
                     f"any {_s(exp.abort_if.over_s)} window (faults reverted, verdict FAIL)")
    if exp.probes:
        lines.append("")
        lines.append("Probes")
        for p in exp.probes:
            every = f" every {_s(p.interval_s)}" if p.repeats else ""
            lines.append(f"  {p.name} ({p.use}, {p.mode}{every}, timeout {_s(p.timeout_s)}): {p.describe()}")
    lines.append(f"Fewer than {exp.min_samples} requests in total: INCONCLUSIVE")
    return "\n".join(lines)


def render_target(t: Target) -> str:
    lines = [f"Target  {t.name}  ({t.root})"]
    for s in t.services:
        lines.append(f"  {s.name:<12} {s.image:<28} x{s.replicas}  networks {', '.join(s.networks)}")
    for link in t.links:
        lines.append(f"  link {link.name}: {link.client} -> {link.upstream}:{link.port}")
    for r in t.roles:
        lines.append(f"  role {r.name}: {r.describe()}")
    d = t.durability
    if d is not None:
        if d.read is not None:
            ids = f" → ids at {d.ids}" if d.ids else " → ids"
            lines.append(f"  durability: after load stops, {d.read.describe()}{ids}"
                         + (f" matching {d.match!r}" if d.match else "")
                         + (" (it consumes what it reads)" if d.consumes else ""))
        for inv in d.invariants:
            src = f" from {inv.read.describe()}" if inv.read else ""
            lines.append(f"  invariant {inv.name}: {inv.describe()}{src}")
    for w in t.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


# ─────────────────────────────────────── commands ───────────────────────────────────────


def _is_target(p: Path) -> bool:
    if p.is_dir():
        return any((p / n).is_file() for n in (OVERLAY_FILE, *COMPOSE_FILES))
    return p.name in COMPOSE_FILES or p.name == OVERLAY_FILE


def _fail(err: InputError, stream: TextIO) -> None:
    print(f"error: {err}", file=stream)


def cmd_validate(paths: list[str], *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate experiment files/directories (and targets given as compose.yaml or their
    directory). Reports every bad file, not just the first. 0 when all are valid, else 2."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not paths:
        print("error: give experiment files or directories to validate", file=err)
        return EXIT_INPUT
    bad = 0
    targets: dict[Path, Target] = {}
    names: dict[str, Path] = {}
    seen: set[Path] = set()
    warned: set[str] = set()

    def warn(t: Target) -> None:
        for w in t.warnings:
            if w not in warned:
                warned.add(w)
                print(f"warning: {w}", file=err)

    for raw in paths:
        p = Path(raw)
        try:
            if _is_target(p):
                t = load_target(p)
                print(f"ok    target {t.name}  {p}", file=out)
                warn(t)
                continue
            files = experiment_files([p])
        except InputError as e:
            _fail(e, err)
            bad += 1
            continue
        for f in files:
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            try:
                exp = load_experiment(f, _targets=targets)
                if exp.name in names:
                    raise load_yaml(f).error(f"experiment name {exp.name!r} is also used by "
                                             f"{names[exp.name]}; names must be unique in a suite",
                                             ("name",))
                names[exp.name] = f
            except InputError as e:
                _fail(e, err)
                bad += 1
                continue
            print(f"ok    {exp.name}  {f}  ({len(exp.faults)} fault(s), {_s(exp.duration_s)})",
                  file=out)
            warn(exp.target)
    if bad:
        print(f"{bad} invalid file(s)", file=err)
        return EXIT_INPUT
    return EXIT_OK


def cmd_schema(*, out: TextIO | None = None) -> int:
    """Print the experiment JSON Schema."""
    try:
        print(json.dumps(experiment_schema(), indent=2, ensure_ascii=False), file=out or sys.stdout)
        (out or sys.stdout).flush()
    except BrokenPipeError:
        _quiet_stdout()
    return EXIT_OK


def cmd_plan(paths: list[str], *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the timeline each experiment would run. 0, or 2 on bad input."""
    from harness.loader import load_experiments

    out = out or sys.stdout
    err = err or sys.stderr
    if not paths:
        print("error: give experiment files or directories to plan", file=err)
        return EXIT_INPUT
    try:
        experiments = load_experiments(paths)
    except InputError as e:
        _fail(e, err)
        return EXIT_INPUT
    try:
        print("\n\n".join(render_plan(e) for e in experiments), file=out)
        out.flush()
    except BrokenPipeError:     # `continuum plan ... | head`
        _quiet_stdout()
    return EXIT_OK


def _quiet_stdout() -> None:
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass

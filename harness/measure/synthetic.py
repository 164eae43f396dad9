"""Synthetic runs with known answers, for tests and report previews (no Docker, no Locust).

`steady_samples` produces requests at a fixed rate; `make_record` wraps samples in a RunRecord
with a minimal experiment. Both are deterministic for a given seed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Sequence

from harness.measure.recovery import fault_start
from harness.model.assertions import Assertion
from harness.model.experiment import Experiment, LoadSpec
from harness.model.durability import ledger_audit
from harness.model.record import (
    AuditSnapshot,
    FaultEvent,
    InvariantReading,
    Note,
    Phase,
    RunRecord,
    Sample,
    WriteRecord,
)
from harness.model.target import Target


def steady_samples(t0: float, t_end: float, rate: float, latency_s: float = 0.01,
                   fails: Callable[[float, float], bool] | None = None, jitter_s: float = 0.0,
                   seed: int = 0, error: str = "ConnectionError", name: str = "transfer",
                   latency: Callable[[float], float] | None = None) -> list[Sample]:
    """Requests started every 1/rate s in [t0, t_end); `fails(t, latency)` marks failures;
    `latency(t)`, when given, replaces `latency_s` (a slowdown at a known time)."""
    rng = random.Random(seed)
    out: list[Sample] = []
    n = int(round((t_end - t0) * rate))
    for k in range(n):
        t = t0 + k / rate
        lat = (latency(t) if latency else latency_s) + (rng.uniform(0, jitter_s) if jitter_s else 0.0)
        bad = bool(fails and fails(t, lat))
        out.append(Sample(t=t, latency_s=lat, ok=not bad, name=name, error=error if bad else ""))
    return out


def make_experiment(name: str = "synthetic", *, duration_s: float = 10.0,
                    slo: Sequence[Assertion] = (), steady_state: Sequence[Assertion] = (),
                    recovery_window_s: float = 1.0, min_samples: int = 100, **kw) -> Experiment:
    # Built without validation: a synthetic experiment may lack what a file must have (an SLO).
    target = Target(name="synthetic", root=Path("/nonexistent/target"), services=(), networks=(),
                    durability=kw.pop("durability", None) or ledger_audit("/audit"))
    return Experiment.model_construct(
        api_version="continuum/v1", kind="Experiment",
        name=name, description=kw.pop("description", "a synthetic run"), target=target,
        duration_s=duration_s, load=LoadSpec(profile="ledger"), slo=tuple(slo),
        steady_state=tuple(steady_state), recovery_window_s=recovery_window_s,
        min_samples=min_samples, faults=(), abort_if=kw.pop("abort_if", None), source=None, **kw)


def make_record(samples: Sequence[Sample], *, experiment: Experiment | None = None, t0: float = 1000.0,
                t_end: float | None = None, phases: Sequence[Phase] | None = None,
                faults: Sequence[FaultEvent] = (), writes: Sequence[WriteRecord] = (),
                audit: AuditSnapshot | None = None, notes: Sequence[Note] = (),
                run_id: str = "r-synthetic", **kw) -> RunRecord:
    exp = experiment or make_experiment()
    t_end = t0 + exp.duration_s if t_end is None else t_end
    if phases is None:
        phases = _phases_from_faults(t0, t_end, faults)
    return RunRecord(
        experiment=exp, run_id=run_id, started_at="2025-01-01T00:00:00+00:00", t0=t0, t_end=t_end,
        samples=tuple(samples), phases=tuple(phases), faults=tuple(faults), writes=tuple(writes),
        audit=audit, notes=tuple(notes), **kw)


def ledger_snapshot(ids: Sequence[str] | frozenset[str], total: int, expected: int) -> AuditSnapshot:
    """What the reference ledger's read-back returns: the ids and its money invariant."""
    return AuditSnapshot(ids=tuple(sorted(ids)), invariants=(InvariantReading(
        "money_conserved", "==", total, expected, description="total_balance == expected_total"),),
        source="http GET /audit on the entry points")


def _phases_from_faults(t0: float, t_end: float, faults: Sequence[FaultEvent]) -> list[Phase]:
    if not faults:
        return [Phase("baseline", t0, t_end)]
    fs = sorted(faults, key=fault_start)
    phases = [Phase("baseline", t0, fault_start(fs[0]))]
    end = t0
    for f in fs:
        end = max(f.injected_t, f.reverted_t if f.reverted_t is not None else f.injected_t)
        phases.append(Phase(f"fault:{f.fault}", fault_start(f), end))
    phases.append(Phase("recovery", end, t_end))
    return phases


def demo_record(seed: int = 1) -> RunRecord:
    """A 20 s run at 200 req/s with a 2 s link-down fault at 8 s, a note, writes and an audit."""
    t0 = 5000.0
    down, up = t0 + 8.0, t0 + 10.0
    rng = random.Random(seed)

    def fails(t: float, lat: float) -> bool:
        return (t < up and t + lat > down) or rng.random() < 0.001

    samples = steady_samples(t0, t0 + 20.0, 200, latency_s=0.02, jitter_s=0.03, fails=fails, seed=seed)
    writes = [WriteRecord(f"w{k}", "acked" if s.ok else "unknown", s.t) for k, s in enumerate(samples[::10])]
    unknown = [w.id for w in writes if w.outcome == "unknown"]
    # one acked write lost, one unknown write that did happen, one write nobody attempted
    present = (frozenset(w.id for w in writes if w.outcome == "acked") - {"w0"}) | {unknown[0], "ghost-1"}
    exp = make_experiment(
        "link-down-demo", duration_s=20.0, recovery_window_s=1.0,
        description="Take the lb→app-1 link down for 2 s under 200 req/s.",
        slo=(Assertion("availability", ">=", 0.999, ">= 99.9%"),
             Assertion("latency_p99", "<=", 0.5, "<= 500ms"),
             Assertion("time_to_recover", "<=", 5.0, "<= 5s"),
             Assertion("lost_writes", "==", 0, "== 0")),
        steady_state=(Assertion("availability", ">=", 0.99, ">= 99%"),))
    fault = FaultEvent("lb-app-down", "network.down", ("lb-app-1",), down, up)
    return make_record(samples, experiment=exp, t0=t0, t_end=t0 + 20.0, faults=[fault], writes=writes,
                       audit=ledger_snapshot(present, 1_000_000, 1_000_000),
                       notes=[Note(t0 + 12.5, "dashboards show lb marked app-1 up again")],
                       run_id="r-demo")

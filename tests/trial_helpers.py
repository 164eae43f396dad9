"""Synthetic trials with known answers: a run whose fault fails everything for a given time."""

from __future__ import annotations

from harness.measure import evaluate
from harness.measure.result import Result
from harness.measure.synthetic import ledger_snapshot, make_experiment, make_record, steady_samples
from harness.model import Assertion, FaultEvent, WriteRecord

T0 = 1000.0
AVAIL = Assertion("availability", ">=", 0.80, ">= 80%")
LOST = Assertion("lost_writes", "==", 0, "== 0")
OUTAGES = [2.1, 2.4, 2.2, 3.0, 2.3, 2.6, 2.2, 3.4, 2.5, 2.3]


def ttr(th: float) -> Assertion:
    return Assertion("time_to_recover", "<=", th, f"<= {th:g}s")


def trial(outage_s: float, *, slo=(AVAIL,), lost: int = 0, k: int = 0, name: str = "set", **kw) -> Result:
    """A 20 s run at 50 req/s whose fault at 5 s fails everything for `outage_s` seconds."""
    exp = make_experiment(name, duration_s=20.0, slo=slo, recovery_window_s=1.0)
    down = T0 + 5.0
    samples = steady_samples(T0, T0 + 20.0, 50, fails=lambda t, lat: down <= t < down + outage_s, seed=k)
    writes = [WriteRecord(f"w{k}-{i}", "acked", T0 + i) for i in range(10)]
    present = frozenset(w.id for w in writes[lost:])
    fault = FaultEvent("kill", "container.kill", ("x",), down, None)
    rec = make_record(samples, experiment=exp, t0=T0, t_end=T0 + 20.0, faults=[fault], writes=writes,
                      audit=ledger_snapshot(present, 10, 10), run_id=f"r{name}{k}", **kw)
    return evaluate(rec)


def trials(outages=OUTAGES, **kw) -> list[Result]:
    return [trial(o, k=k, **kw) for k, o in enumerate(outages)]

"""The bounded measurement path (harness.measure.store) against the raw one, with known answers."""

from __future__ import annotations

import dataclasses
import random

import pytest

from harness.measure import evaluate
from harness.measure.latency import Dist
from harness.measure.store import SampleStore, StepLatency
from harness.measure.synthetic import make_experiment, make_record, steady_samples
from harness.measure.timeline import percentile
from harness.model import Assertion, FaultEvent, Phase, Sample

T0 = 1000.0
END = T0 + 120.0


def _holes(t: float, lat: float) -> bool:
    # a 2.0 s link down at 30 s (every request in flight fails), 600 ms of errors at 75 s,
    # and one lone failure at 100 s
    return (T0 + 30.0 < t + lat and t < T0 + 32.0) or (T0 + 75.0 <= t < T0 + 75.6) \
        or abs(t - (T0 + 100.0)) < 1e-9


def _stream(seed: int = 3) -> list[Sample]:
    a = steady_samples(T0, END, 300, latency_s=0.004, jitter_s=0.02, fails=_holes, seed=seed, name="transfer")
    b = steady_samples(T0 + 0.0013, END, 100, latency_s=0.002, jitter_s=0.01, fails=_holes, seed=seed + 1,
                       name="balance")
    # a gap in demand too: nothing sent between 50 s and 50.8 s
    return sorted((s for s in a + b if not T0 + 50.0 <= s.t < T0 + 50.8), key=lambda s: s.t)


def _record(samples, store=None):
    faults = [FaultEvent("cut", "network.down", ("lb-app-1",), T0 + 30.0, T0 + 32.0, issued_t=T0 + 29.99),
              FaultEvent("errors", "container.kill", ("app-1",), T0 + 75.0, None, issued_t=T0 + 74.98)]
    phases = [Phase("baseline", T0, T0 + 27.99), Phase("fault:cut", T0 + 29.99, T0 + 32.0),
              Phase("fault:errors", T0 + 74.98, T0 + 80.0), Phase("recovery", T0 + 85.0, END)]
    slo = (Assertion("availability", ">=", 0.999, ">= 99.9%"),)
    exp = make_experiment(slo=slo, recovery_window_s=1.0, duration_s=120.0)
    rec = make_record(samples, experiment=exp, t0=T0, t_end=END, faults=faults, phases=phases)
    return dataclasses.replace(rec, samples=() if store else rec.samples, store=store)


def _bounded(samples, **kw):
    st = SampleStore(T0, close_after_s=2.0, margin_s=3.0, **kw)
    # the phase and fault edges, announced before their steps are judged (as the run does live)
    for t in (T0 + 27.99, T0 + 29.99, T0 + 30.0, T0 + 32.0, T0 + 74.98, T0 + 75.0, T0 + 80.0, T0 + 85.0):
        st.mark(t)
    for k in range(0, len(samples), 997):        # delivered in batches, as polls are
        st.add(samples[k:k + 997])
    st.finish(END)
    return st


def _figures(r):
    def phase(p):
        return (p.name, p.requests, p.successes, p.failures, p.availability, p.errors, p.longest_outage,
                p.throughput_rps, tuple((o.operation, o.requests, o.successes, o.longest_outage) for o in p.operations))
    return {
        "phases": [phase(p) for p in r.phases],
        "faults": [(f.fault, f.error_window, f.recovery,
                    tuple((o.operation, o.error_window, o.recovery) for o in f.operations)) for f in r.faults],
        "ttr": r.time_to_recover_s, "outage": r.longest_outage,
        "timeline": [(s.ok, s.failed) for s in r.timeline],
        "verdict": r.verdict,
    }


def test_bounded_path_gives_the_raw_paths_outages_ttr_and_error_windows():
    samples = _stream()
    raw = evaluate(_record(samples))
    store = _bounded(samples, raw_cap=5_000, hard_cap=40_000)
    bounded = evaluate(_record(samples, store))
    info = bounded.measurement
    # the bounded path really ran: most of the run was held as counts, none of it carelessly
    assert info.evicted_requests > 0.6 * len(samples) and info.raw_requests < 0.4 * len(samples)
    assert not info.capped and info.cuts_in_evicted_steps == 0 and info.requests == len(samples)
    assert raw.measurement.evicted_steps == 0
    assert _figures(bounded) == _figures(raw)
    # and the known answers themselves
    assert raw.longest_outage.duration_s == pytest.approx(2.0, abs=0.03)
    assert raw.faults[0].error_window.first_s == pytest.approx(29.98, abs=0.03)
    # 600 ms of errors at 400 req/s, then the lone failure at 100 s, which postpones recovery:
    # the last 1 s window holding it starts just before 100 s, 25.0 s after the fault's start
    ew = raw.faults[1].error_window
    assert (ew.failures, ew.first_s, ew.last_s) == (240 + 1, pytest.approx(75.0), pytest.approx(100.0))
    assert raw.faults[1].recovery.time_to_recover_s == pytest.approx(25.1, abs=0.11)


def test_bounded_percentiles_within_a_tenth_of_a_percent_of_exact():
    rng = random.Random(11)
    samples = [Sample(T0 + k / 2000, rng.lognormvariate(-4.0, 0.8), True, name=rng.choice("ab"))
               for k in range(2000 * 60)]
    st = SampleStore(T0, raw_cap=10_000, margin_s=1.0)
    for t in (T0 + 7.03, T0 + 19.571):          # phase edges off the step grid, announced
        st.mark(t)
    st.add(samples)
    st.finish(END)
    assert st.info().evicted_steps > 300
    worst = 0.0
    for op in (None, "a", "b"):
        # the whole run, a phase between marks, and evicted stretches on step and block edges
        # (a cut inside a folded block of evicted steps is by block: not one the harness makes)
        for start, end in ((T0, END), (T0 + 7.03, T0 + 19.571), (T0 + 40.0, T0 + 45.0), (T0 + 25.0, T0 + 55.0)):
            exact = sorted(s.latency_s for s in samples if start <= s.t < end and (op is None or s.name == op))
            felt, _ = st.latency(op, start, end)
            for q, got in zip((50, 90, 99, 99.9, 100), felt.percentiles((50, 90, 99, 99.9, 100))):
                want = percentile(exact, q)
                assert want <= got <= want * (1 + 2 ** -10) + 1e-6, (op, start, q)
                worst = max(worst, got / want - 1)
    print(f"worst percentile error {worst * 100:.4f} %")
    assert worst < 0.001


def test_step_latency_merges_exactly_across_load_processes():
    rng = random.Random(5)
    samples = [Sample(T0 + k / 1000, rng.expovariate(40.0) + 0.001, True) for k in range(20_000)]
    one = SampleStore.of(samples, T0, T0 + 20.0)
    split = SampleStore(T0)
    for k in range(0, len(samples), 500):                # three workers, interleaved batches
        split.add(samples[k:k + 500], src=(k // 500) % 3)
    split.finish(T0 + 20.0)
    assert split.info().sources == 3 and one.info().sources == 1
    for start, end in ((T0, T0 + 20.0), (T0 + 3.3, T0 + 3.9)):
        qs = (1, 50, 95, 99, 99.99, 100)
        assert split.latency(None, start, end)[0].percentiles(qs) == one.latency(None, start, end)[0].percentiles(qs)
    assert [s.p99_s for s in split.steps(None, T0 + 20.0)] == [s.p99_s for s in one.steps(None, T0 + 20.0)]
    # counts add: the merge of the parts is the whole, bucket by bucket
    a, b, whole = StepLatency(), StepLatency(), StepLatency()
    a.put(0, "", 0, {5: 2, 9: 1})
    b.put(0, "", 0, {9: 3, 11: 1})
    whole.put(0, "", 0, {5: 2, 9: 4, 11: 1})
    assert a.merge(b).get(0, "", 0) == whole.get(0, "", 0)


def test_a_run_failing_throughout_hits_the_cap_and_says_so():
    bad = steady_samples(T0, T0 + 60.0, 200, fails=lambda t, lat: int(t) % 2 == 0)
    st = _bounded(bad, raw_cap=2_000, hard_cap=4_000, failure_cap=1_000)
    info = st.info()
    assert info.capped and info.capped_steps > 0 and info.failures_merged > 0
    assert info.raw_requests <= 4_000 + 200 * 5          # the hard cap, plus steps not yet judgeable
    r = evaluate(_record(bad, st))
    # counts stay exact even so
    assert r.overall.requests == len(bad) and r.overall.failures == sum(not s.ok for s in bad)


def test_memory_of_a_steady_run_does_not_grow_with_its_length():
    kept = []
    for seconds in (60, 240):
        st = SampleStore(T0, raw_cap=3_000, margin_s=3.0, close_after_s=2.0)
        st.add(steady_samples(T0, T0 + seconds, 500, latency_s=0.003, jitter_s=0.004))
        st.finish(T0 + seconds)
        kept.append(st.info().raw_requests)
    assert max(kept) <= 3_000 and abs(kept[1] - kept[0]) <= 50       # one step apart at most


def test_percentiles_of_known_values_are_exact_and_unknown_over_nothing():
    d = Dist()
    for v in (0.010, 0.020, 0.020, 0.5):
        d.add(v)
    assert d.percentiles((0, 50, 75, 100)) == [0.010, 0.020, 0.020, 0.5]
    assert Dist().percentiles((50,)) == [None]
    with pytest.raises(ValueError):
        d.percentiles((101,))


def test_a_distributed_runs_samples_reach_the_store_by_worker(tmp_path, monkeypatch):
    """LoadGenerator(keep_samples=False).poll_sources: each worker's samples, named, then
    forgotten; the store keeps a histogram set per worker and merges them."""
    from harness.load.runner import LoadGenerator
    from test_load_distributed import FAKE_MASTER

    exe = tmp_path / "fake-master"
    exe.write_text(FAKE_MASTER)
    exe.chmod(0o755)
    (tmp_path / "locustfile.py").write_text("# not imported by the fake\n")
    monkeypatch.setenv("FAKE_MASTER_MODE", "good")
    with LoadGenerator(tmp_path / "locustfile.py", "U", "http://127.0.0.1:1", users=2, spawn_rate=2,
                       request_timeout_s=1.0, max_duration_s=30, python=str(exe), workers=2,
                       keep_samples=False) as load:
        pass
    got = load.poll_sources(final=True)
    # worker 1's clock is 100 s ahead: its sample is on ours already
    assert [(src, [(s.t, s.ok) for s in ss]) for src, ss in got] == [(0, [(6.0, True)]), (1, [(6.5, False)]),
                                                                     (0, [(7.0, True)])]
    assert load.samples() == () and load.poll_sources(final=True) == []     # handed out, forgotten
    st = SampleStore(5.0)
    for src, ss in got:
        st.add(ss, src)
    st.finish(8.0)
    assert st.info().sources == 2
    assert st.latency(None, 5.0, 8.0)[1].total == 2


def test_folded_blocks_of_evicted_steps_change_no_figure_cut_at_a_mark(monkeypatch):
    import harness.measure.store as store_mod

    rng = random.Random(5)
    samples = [Sample(T0 + k / 2000, rng.lognormvariate(-4.0, 0.8), True, name=rng.choice("ab"))
               for k in range(2000 * 60)]
    marks = (T0 + 7.03, T0 + 19.571)

    def store(block_steps):
        monkeypatch.setattr(store_mod, "BLOCK_STEPS", block_steps)
        st = SampleStore(T0, raw_cap=10_000, margin_s=1.0)
        for t in marks:
            st.mark(t)
        st.add(samples)
        st.finish(END)
        return st

    folded, flat = store(50), store(10 ** 9)
    assert len(folded._folded) >= 6 and not flat._folded
    for op in (None, "a", "b"):
        for start, end in ((T0, END), marks, (T0 + 25.0, T0 + 55.0)):
            monkeypatch.setattr(store_mod, "BLOCK_STEPS", 50)
            a = folded.latency(op, start, end)[0].counts
            monkeypatch.setattr(store_mod, "BLOCK_STEPS", 10 ** 9)
            b = flat.latency(op, start, end)[0].counts
            assert a == b, (op, start, end)
    monkeypatch.setattr(store_mod, "BLOCK_STEPS", 50)
    # the timeline keeps every step's counts exactly; inside a block its p50/p99 are the block's
    assert [(s.ok, s.failed) for s in folded.steps(None, END)] == [(s.ok, s.failed) for s in flat.steps(None, END)]
    assert folded.nbytes() < flat.nbytes()
    assert folded.info((T0 + 40.05,)).cuts_in_evicted_steps == 1       # a cut inside a block says so

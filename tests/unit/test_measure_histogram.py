"""harness.measure.histogram: the library's layout, exact merges, bounded error, late samples."""

from __future__ import annotations

import json
import random

import pytest

from harness.measure import histogram as H
from harness.measure.timeline import percentile
from harness.model import Sample

T0 = 500.0


def test_inline_index_is_the_librarys():
    h = H.new_histogram()
    rng = random.Random(1)
    values = [1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 10**6, H.HIGHEST_US] + \
             [rng.randrange(1, H.HIGHEST_US) for _ in range(5000)] + [int(rng.lognormvariate(9, 2)) + 1 for _ in range(5000)]
    for v in values:
        assert H.index_of(v) == h._counts_index_for(v), v


def test_encoded_counts_are_what_the_library_records():
    rng = random.Random(2)
    vals = [int(rng.lognormvariate(9.5, 0.7)) + 1 for _ in range(3000)]
    h = H.new_histogram()
    counts: H.Counts = {}
    for v in vals:
        h.record_value(v)
        i = H.index_of(v)
        counts[i] = counts.get(i, 0) + 1
    assert H.decode(h.encode()) == counts
    back = H.new_histogram().decode(H.encode(counts))
    assert back.get_total_count() == 3000 and back.get_value_at_percentile(50) == h.get_value_at_percentile(50)


def test_to_us_clamps():
    assert H.to_us(0.0) == 1 and H.to_us(0.0123456) == 12346 and H.to_us(10_000.0) == H.HIGHEST_US


def test_percentiles_within_a_thousandth_and_never_below_exact():
    rng = random.Random(3)
    vals = sorted(int(rng.lognormvariate(10, 1.0)) + 1 for _ in range(20_000))
    counts: H.Counts = {}
    for v in vals:
        i = H.index_of(v)
        counts[i] = counts.get(i, 0) + 1
    qs = (1, 10, 50, 90, 95, 99, 99.9, 100)
    for q, got in zip(qs, H.percentiles_us(counts, qs)):
        exact = percentile(vals, q)
        assert exact <= got <= exact * (1 + 2 ** -10), (q, exact, got)
    assert H.percentiles_us({}, (50,)) == [None]


def samples(n=20_000, seed=4, t0=T0, span=30.0, fail_every=50):
    rng = random.Random(seed)
    return [Sample(t0 + span * k / n, rng.lognormvariate(-4, 0.6), k % fail_every != 0) for k in range(n)]


def test_steps_and_ranges_against_raw_samples():
    ss = samples()
    sh = H.StepHistograms(T0, close_after_s=2.0, block_steps=50)
    sh.record_many(ss)
    sh.close_all()
    steps = sh.steps(T0 + 30.0)
    assert len(steps) == 300 and sum(s.ok + s.failed for s in steps) == len(ss)
    for k in (0, 17, 299):
        chunk = sorted(s.latency_s for s in ss if T0 + 0.1 * k <= s.t < T0 + 0.1 * (k + 1) and s.ok)
        exact = percentile(chunk, 99)
        assert steps[k].ok == len(chunk)
        assert exact - 1e-6 <= steps[k].p99_s <= exact * (1 + 2 ** -10) + 1e-6
    # a range spanning blocks gives the same answer as merging its steps one by one
    lo, hi = T0 + 3.0, T0 + 27.0
    by_steps: H.Counts = {}
    for k in range(30, 270):
        c = sh._closed.get(k)
        if c and c.blob:
            H.merge_into(by_steps, H.unpack(c.blob))
    assert sh.counts_between(lo, hi) == by_steps
    exact = percentile(sorted(s.latency_s for s in ss if lo <= s.t < hi and s.ok), 99)
    got = sh.percentiles(lo, hi, (99,))[0]
    assert exact - 1e-6 <= got <= exact * (1 + 2 ** -10) + 1e-6
    assert sh.percentiles(T0, T0 + 30.0, (50,)) == [H.percentiles_us(sh.overall, (50,))[0] / 1e6]


def test_merge_of_two_processes_is_exact():
    ss = samples()
    one = H.StepHistograms(T0, close_after_s=2.0)
    one.record_many(ss)
    one.close_all()
    a, b = H.StepHistograms(T0, close_after_s=2.0), H.StepHistograms(T0, close_after_s=2.0)
    a.record_many(ss[0::2])
    b.record_many(ss[1::2])
    a.merge(b)
    assert a.steps(T0 + 30.0) == one.steps(T0 + 30.0)
    assert a.overall == one.overall and a.requests == one.requests
    assert a.counts_between(T0 + 1.0, T0 + 29.0) == one.counts_between(T0 + 1.0, T0 + 29.0)
    with pytest.raises(ValueError):
        a.merge(H.StepHistograms(T0 + 1.0))
    # across a process boundary, in the library's wire format
    c, d = H.StepHistograms(T0, close_after_s=2.0), H.StepHistograms(T0, close_after_s=2.0)
    c.record_many(ss[0::2])
    d.record_many(ss[1::2])
    c.merge(H.StepHistograms.from_wire(json.loads(json.dumps(d.to_wire()))))
    assert c.steps(T0 + 30.0) == one.steps(T0 + 30.0)


def test_pack_roundtrip():
    counts = {0: 1, 5: 3, 1000: 7, H.COUNTS_LEN - 1: 2}
    assert H.unpack(H.pack(counts)) == counts
    assert H.unpack(H.pack({})) == {}


def test_a_late_sample_reopens_its_step():
    sh = H.StepHistograms(T0, close_after_s=1.0, block_steps=10)
    for s in samples(3000, span=10.0):
        sh.record(s.t, s.latency_s, s.ok)
    assert 5 in sh._closed
    before = sh._closed[5].ok
    sh.record(T0 + 0.55, 0.5, True)              # 9 s late
    sh.close_all()
    assert sh.late == 1 and sh._closed[5].ok == before + 1
    assert sh.steps(T0 + 10.0)[5].ok == before + 1
    assert sum(sh.counts_between(T0, T0 + 10.0).values()) == sum(sh.overall.values())


def test_memory_is_bounded_by_steps_not_requests():
    sparse, dense = H.StepHistograms(T0, close_after_s=1.0), H.StepHistograms(T0, close_after_s=1.0)
    sparse.record_many(samples(2000, span=20.0, seed=5))
    dense.record_many(samples(40_000, span=20.0, seed=5))
    sparse.close_all()
    dense.close_all()
    assert dense.nbytes() < 4 * sparse.nbytes()          # 20x the requests, not 20x the bytes

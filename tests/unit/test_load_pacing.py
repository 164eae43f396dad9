"""The open-loop arrival schedule (harness.load.pacing), on a fake clock."""

from __future__ import annotations

import pytest

from harness.load.pacing import Arrivals


class Clock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_due_times_are_on_an_absolute_schedule_from_the_first_take():
    clock = Clock()
    a = Arrivals(200.0, clock=clock)
    assert a.lateness() == 0.0
    assert [a.take() for _ in range(3)] == [100.0, 100.005, 100.01]
    # Nobody took a slot for a second (every user busy with a slow answer): the schedule does not
    # move with the system; the next slots are in the past and say how late they are.
    clock.t = 101.0
    assert a.lateness() == pytest.approx(1.0 - 0.015)
    assert a.take() == pytest.approx(100.015)
    assert a.taken == 4


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        Arrivals(0.0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_workers_partition_the_one_schedule_exactly(n):
    # Known answer: N workers taking every N-th slot from a common origin offer the single
    # schedule's due times, each exactly once: none doubled, none skipped, total rate = rate.
    rate, origin, total = 300.0, 50.0, 840
    single = Arrivals(rate, clock=Clock(origin))
    expected = [single.take() for _ in range(total)]
    parts = [Arrivals(rate, clock=Clock(999.0), origin=origin, index=i, stride=n) for i in range(n)]
    got = sorted(p.take() for p in parts for _ in range(total // n))
    assert got == pytest.approx(expected, abs=1e-9)
    assert len(set(round(t, 9) for t in got)) == total
    # each worker alone runs at rate / n, evenly spaced
    w = Arrivals(rate, clock=Clock(), origin=origin, index=n - 1, stride=n)
    a, b = w.take(), w.take()
    assert b - a == pytest.approx(n / rate)
    assert a == pytest.approx(origin + (n - 1) / rate)


def test_a_given_origin_is_kept_and_lateness_counts_this_workers_next_slot():
    clock = Clock(10.0)
    a = Arrivals(100.0, clock=clock, origin=9.0, index=1, stride=2)
    assert a.take() == pytest.approx(9.01)
    # next own slot is 3 → due 9.03; at 10.0 it is 0.97 s late
    assert a.lateness() == pytest.approx(0.97)


@pytest.mark.parametrize("index,stride", [(2, 2), (-1, 2), (0, 0)])
def test_index_must_be_inside_the_stride(index, stride):
    with pytest.raises(ValueError):
        Arrivals(10.0, index=index, stride=stride)

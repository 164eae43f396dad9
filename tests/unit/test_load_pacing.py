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

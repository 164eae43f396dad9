"""Open-loop pacing: requests due at a constant rate, whatever the system does.

    arrivals = Arrivals(rate=200.0)
    due = arrivals.take()          # the next request's due time (monotonic seconds)

The k-th request is due at `origin + k / rate`, `origin` being the first call. Users take due
times one at a time when they are free: a user sleeps until its request is due, sends it, and
takes the next free slot when it is done (as k6's constant-arrival-rate executor hands
iterations to its pool of VUs). While enough users are free the rate holds exactly however slow
the system answers; when all are busy, due requests wait for a user and are sent late, and the
time they waited counts in their latency (each request is measured from when it was due, as
wrk2 does), so a slow system can neither lower the offered rate unseen nor hide its slowness.

Why not Locust's own `constant_throughput` / `constant_pacing`: they pace each user on its own
and never catch up, so one user's slow answer simply delays its next request (the schedule
moves with the system: coordinated omission again), and they do not say when a request was
due. A single shared schedule keeps the aggregate rate and gives every request its due time.

With several load workers (harness.load.distributed) the schedule is shared and partitioned:
worker `index` of `stride` takes slots index, index + stride, index + 2·stride, ... of the one
schedule starting at a common `origin` (the master's start, on the worker's clock), so the
workers together offer exactly `rate` and no slot is sent twice or skipped.

No locust import: the worker wires this into a user class (harness.load.worker).
"""

from __future__ import annotations

import time
from typing import Callable


class Arrivals:
    """A shared schedule of due times at `rate` per second, handed out in order."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, *,
                 origin: float | None = None, index: int = 0, stride: int = 1):
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        if not (isinstance(stride, int) and stride >= 1 and isinstance(index, int) and 0 <= index < stride):
            raise ValueError(f"need 0 <= index < stride, got index={index!r} stride={stride!r}")
        self.rate = float(rate)
        self._clock = clock
        self.origin: float | None = origin
        self.index = index
        self.stride = stride
        self.taken = 0

    def slot(self, k: int) -> int:
        """The shared schedule's slot number of this worker's k-th request."""
        return self.index + k * self.stride

    def take(self) -> float:
        """The next due time. Without a given origin the first call starts the schedule (due now)."""
        if self.origin is None:
            self.origin = self._clock()
        due = self.origin + self.slot(self.taken) / self.rate
        self.taken += 1
        return due

    def lateness(self, now: float | None = None) -> float:
        """How far behind the schedule the next free slot is (0 when on time)."""
        if self.origin is None:
            return 0.0
        now = self._clock() if now is None else now
        return max(0.0, now - (self.origin + self.slot(self.taken) / self.rate))

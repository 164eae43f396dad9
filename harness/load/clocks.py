"""A load worker's clock against the master's, NTP-style, from ping/pong round trips.

    master sends ping at t0 (its clock) ─▶ worker answers with tw (its clock) ─▶ back at t1
    offset = tw − (t0 + t1) / 2        (worker clock − master clock)
    error  ≤ (t1 − t0) / 2             (the worker read its clock somewhere in the round trip)

Of several round trips the one with the shortest round trip is kept (its bound is the
tightest, as NTP's clock filter does). A worker time becomes a master time as `tw − offset`.

Processes on one machine read the same CLOCK_MONOTONIC, so their true offset is 0: the
offset is still measured and recorded (it shows the method's error), but the correction
applied is 0 when the worker reports the master's boot id (same kernel, same clock). A worker
on another machine has its measured offset applied. No locust import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Offset:
    offset_s: float         # worker clock − master clock, measured
    rtt_s: float            # round trip of the exchange it came from: |error| <= rtt_s / 2
    same_clock: bool        # same boot id: the correction applied is exactly 0
    rounds: int

    @property
    def applied_s(self) -> float:
        """What is subtracted from the worker's times to put them on the master's clock."""
        return 0.0 if self.same_clock else self.offset_s


def estimate(exchanges: Iterable[tuple[float, float, float]], same_clock: bool = False) -> Offset:
    """(t0, tw, t1) triples → the offset from the shortest round trip. ValueError if none is
    usable (no exchange, or one whose reply came back before it was sent)."""
    best: tuple[float, float] | None = None
    n = 0
    for t0, tw, t1 in exchanges:
        n += 1
        rtt = t1 - t0
        if rtt < 0:
            raise ValueError(f"round trip {n} ends before it starts ({t0!r} → {t1!r})")
        if best is None or rtt < best[1]:
            best = (tw - (t0 + t1) / 2.0, rtt)
    if best is None:
        raise ValueError("no clock exchange with the worker completed")
    return Offset(offset_s=best[0], rtt_s=best[1], same_clock=same_clock, rounds=n)


def boot_id() -> str:
    """This kernel's boot id: equal on both sides means one CLOCK_MONOTONIC."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""           # unknown: never taken as the same clock

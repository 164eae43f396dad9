"""Wall-clock timestamps written by other programs (Docker, Prometheus, Alertmanager), read on
the run's own clock.

Every sample of a run is stamped with CLOCK_MONOTONIC seconds. Docker's `State.FinishedAt` and
Prometheus' alert times are RFC 3339 wall-clock strings; containers share the host's kernel
clock, so once the offset between the two clocks is known such a timestamp says *when on our
clock* something happened, often more precisely than the moment an API call returned (a
`docker kill` under load returned 1.8 s after the container had died, measured here).
"""

from __future__ import annotations

import re
import time
from datetime import datetime

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")


def parse_rfc3339(text: object) -> float:
    """RFC 3339 → Unix seconds (digits below the microsecond dropped). ValueError if malformed."""
    m = _RFC3339.fullmatch(text) if isinstance(text, str) and len(text) <= 64 else None
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {str(text)[:64]!r}")
    frac = (m.group(2) or ".0")[:7]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + zone).timestamp()


class WallClock:
    """Maps Unix seconds to CLOCK_MONOTONIC seconds (and back) with the offset taken when made.

    Over a run of minutes the two clocks drift apart by far less than a scrape interval (NTP
    slews the wall clock by at most 500 ppm: 30 ms a minute), so one offset is enough.
    """

    def __init__(self, offset_s: float | None = None):
        self.offset_s = time.time() - time.monotonic() if offset_s is None else offset_s

    def to_mono(self, unix_s: float) -> float:
        return unix_s - self.offset_s

    def to_unix(self, mono_s: float) -> float:
        return mono_s + self.offset_s

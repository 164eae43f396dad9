"""Which Redis failures a write may retry, and the time budget it retries within."""

from __future__ import annotations

import time

# Error replies (first word) that mean "this node cannot take the write now, another will":
# READONLY   a demoted primary (now a replica) still reached through an old connection
# NOREPLICAS min-replicas-to-write refuses: the primary lost its replicas (maybe isolated)
# LOADING    a node still loading its dataset after a restart
# MASTERDOWN a replica with serve-stale-data off / a primary Sentinel is failing over
# TRYAGAIN, BUSY: transient
RETRYABLE_REPLIES = ("READONLY", "NOREPLICAS", "LOADING", "MASTERDOWN", "TRYAGAIN", "BUSY")
# Of those, the ones that mean the node is no longer (or not yet) the primary to use.
REDISCOVER_REPLIES = ("READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING")


def reply_code(message: str) -> str:
    return message.split(" ", 1)[0].upper() if message else ""


def is_retryable_reply(message: str) -> bool:
    return reply_code(message) in RETRYABLE_REPLIES


def needs_rediscovery(message: str) -> bool:
    return reply_code(message) in REDISCOVER_REPLIES


class Budget:
    """A deadline on the monotonic clock, started when the request arrived (queue time counts)."""

    def __init__(self, seconds: float, started: float | None = None, clock=time.monotonic):
        self._clock = clock
        self.deadline = (started if started is not None else clock()) + seconds

    def remaining(self) -> float:
        return self.deadline - self._clock()

    def expired(self, margin: float = 0.05) -> bool:
        return self.remaining() <= margin

    def backoff(self, attempt: int, base: float = 0.05, cap: float = 0.2) -> float:
        """Sleep before the next attempt: 50, 100, 200, 200 ms … never past the deadline."""
        return max(0.0, min(base * (2**attempt), cap, self.remaining() - 0.05))

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


# redis-py 4.x (Debian bookworm's 4.3.4) raises some error replies as classes of their own and
# drops the code from the message: READONLY arrives as ReadOnlyError("You can't write against a
# read only replica."), whose first word is "YOU". Read by its text alone, a write to a demoted
# primary was neither retried nor sent to the new primary: after a failover every transfer
# through an old connection failed (found by `continuum explore`, issue 11).
STRIPPED_CODES = {"ReadOnlyError": "READONLY", "BusyLoadingError": "LOADING"}


def reply_of(error: BaseException) -> str:
    """The error reply as Redis sent it (code first), whatever the client library made of it."""
    text = str(error)
    code = STRIPPED_CODES.get(type(error).__name__)
    return f"{code} {text}" if code and reply_code(text) != code else text


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

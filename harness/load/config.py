"""The one JSON document the orchestrator writes to the worker's stdin (first line).

Shared by both sides; no locust import. Validated on the worker side so a bad value is a
structured error frame, not a traceback deep inside Locust.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

# Environment variable the worker sets for the locustfile (seconds, as a decimal string).
REQUEST_TIMEOUT_ENV = "CONTINUUM_REQUEST_TIMEOUT"


@dataclass(frozen=True)
class WorkerConfig:
    locustfile: str                 # absolute path of a file
    user_class: str
    host: str
    users: int
    spawn_rate: float
    request_timeout_s: float
    max_duration_s: float           # the worker starts stopping by itself after this long
    stop_grace_s: float             # how long users may finish their current task on stop
    flush_interval_s: float = 0.05
    hard_cap_slack_s: float = 10.0  # SIGALRM kills the worker this long after max_duration + grace
    env: Mapping[str, str] = field(default_factory=dict)
    mode: str = "closed"            # "closed": the profile's own pacing; "open": `rate` per second
    rate: float = 0.0               # open mode: requests due per second (users = most in flight)
    # Distributed mode (harness.load.distributed) when workers + remote_workers > 1: this
    # process is a Locust master that starts `workers` local worker processes and waits for
    # `remote_workers` more started by hand (`continuum load-worker`), at most join_timeout_s.
    workers: int = 1
    remote_workers: int = 0
    master_bind: str = "127.0.0.1:0"    # HOST:PORT the master listens on; port 0: any free one
    join_timeout_s: float = 30.0

    @property
    def distributed(self) -> bool:
        return self.workers + self.remote_workers > 1

    @property
    def total_workers(self) -> int:
        return self.workers + self.remote_workers

    def to_line(self) -> bytes:
        d = asdict(self)
        d["env"] = dict(self.env)
        return json.dumps(d, separators=(",", ":")).encode("utf-8") + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> WorkerConfig:
        try:
            d = json.loads(line)
        except ValueError as e:
            raise ValueError(f"config is not JSON: {e}") from None
        if not isinstance(d, dict):
            raise ValueError("config is not a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        try:
            cfg = cls(**d)
        except TypeError as e:
            raise ValueError(f"config: {e}") from None
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ValueError(f"config: {what}")

        need(isinstance(self.locustfile, str) and self.locustfile != "", "locustfile must be a path")
        need(isinstance(self.user_class, str) and self.user_class.isidentifier(),
             f"user_class must be a Python identifier, got {self.user_class!r}")
        need(isinstance(self.host, str) and self.host != "", "host must be a URL")
        need(_is_int(self.users) and self.users >= 1, f"users must be an integer >= 1, got {self.users!r}")
        for name in ("spawn_rate", "request_timeout_s", "max_duration_s", "stop_grace_s", "flush_interval_s",
                     "hard_cap_slack_s"):
            v = getattr(self, name)
            need(_is_num(v) and math.isfinite(v), f"{name} must be a finite number, got {v!r}")
        need(self.spawn_rate > 0, "spawn_rate must be > 0")
        need(self.request_timeout_s > 0, "request_timeout_s must be > 0")
        need(self.max_duration_s > 0, "max_duration_s must be > 0")
        need(self.stop_grace_s >= 0, "stop_grace_s must be >= 0")
        need(0 < self.flush_interval_s <= 5, "flush_interval_s must be in (0, 5]")
        need(self.hard_cap_slack_s > 0, "hard_cap_slack_s must be > 0")
        need(self.mode in ("closed", "open"), f"mode must be 'closed' or 'open', got {self.mode!r}")
        need(_is_num(self.rate) and math.isfinite(self.rate) and self.rate >= 0,
             f"rate must be a finite number >= 0, got {self.rate!r}")
        need(self.mode != "open" or self.rate > 0, "open mode needs a rate > 0")
        need(_is_int(self.workers) and 1 <= self.workers <= MAX_WORKERS,
             f"workers must be an integer from 1 to {MAX_WORKERS}, got {self.workers!r}")
        need(_is_int(self.remote_workers) and 0 <= self.remote_workers <= MAX_WORKERS,
             f"remote_workers must be an integer from 0 to {MAX_WORKERS}, got {self.remote_workers!r}")
        # Locust's master splits users over workers; a worker with none would hold its share of
        # an open-loop schedule that nobody sends.
        need(not self.distributed or self.users >= self.total_workers,
             f"users ({self.users}) must be at least the number of load workers ({self.total_workers})")
        need(_is_num(self.join_timeout_s) and 0 < self.join_timeout_s <= 600,
             f"join_timeout_s must be in (0, 600], got {self.join_timeout_s!r}")
        try:
            split_address(self.master_bind)
        except ValueError as e:
            need(False, f"master_bind: {e}")
        need(isinstance(self.env, Mapping)
             and all(isinstance(k, str) and isinstance(v, str) for k, v in self.env.items()),
             "env must map strings to strings")


MAX_WORKERS = 64


def split_address(text: Any) -> tuple[str, int]:
    """"HOST:PORT" → (host, port); port 0 means any free port (the master's side only)."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host, _, port_s = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ValueError(f"expected HOST:PORT with a port from 0 to 65535, got {text!r}")
    return host, int(port_s)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)

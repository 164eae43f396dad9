"""The experiment: a target, a load, faults on a timeline, and the numbers the system must meet.

Validated with the target it runs against in the context (`{"target": Target}`), so an
experiment that loaded is known to fit its target: every service, role, link and load profile
it names exists. The `target` field holds that Target: an experiment owns its target, and a
run reads no files. Documented in docs/experiment-format.md (its tables come from here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from harness.faults import FaultUnion
from harness.faults.base import FaultSpec
from harness.model.assertions import AUDIT_METRICS, DRILL_METRICS, MONITOR_METRICS, STEADY_PHASES, Assertions
from harness.model.base import At, Internal, Model, internal
from harness.model.probes import MAX_PROBES, ProbeSpec, check_probes
from harness.model.target import IDENT_PATTERN, Target
from harness.model.units import PERCENT_PATTERN, Bounded, Duration, Name, Text, got, parse_percent

MAX_DURATION_S = 6 * 3600.0         # one experiment
MAX_REQUEST_TIMEOUT_S = 60.0
MAX_FAULTS = 100
MAX_RATE = 20_000.0               # open-loop arrivals per second (one worker does ~10 000 at best)
MAX_TRIALS = 1000
Users = Bounded(int, ge=1, le=5000, description="concurrent users (open mode: the most requests in flight)")
SpawnRate = Bounded(float, gt=0, le=5000, description="users started per second")
RATE_PATTERN = r"^[0-9]+(?:\.[0-9]+)? ?/s$"
MAX_LOAD_WORKERS = 64


def _workers(value: Any) -> int | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer from 1 to {MAX_LOAD_WORKERS} or \"auto\", {got(value)}")
    if not 1 <= value <= MAX_LOAD_WORKERS:
        raise ValueError(f"{value} is out of range; must be from 1 to {MAX_LOAD_WORKERS} (or \"auto\")")
    return value


Workers = Annotated[int | Literal["auto"], BeforeValidator(_workers), WithJsonSchema(
    {"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_LOAD_WORKERS}, {"const": "auto"}],
     "description": "load worker processes: 1 = one Locust process; N > 1 = a Locust master and N "
                    "workers; auto = one per core the harness may use"})]


def load_workers(value: int | str) -> int:
    """`workers` as a count: "auto" is one per core this process may run on."""
    import os

    if value == "auto":
        return max(1, min(MAX_LOAD_WORKERS, len(os.sched_getaffinity(0))))
    return int(value)


def _profile(value: Any) -> str:
    import re

    if not isinstance(value, str) or len(value) > 100 or not re.match(IDENT_PATTERN, value):
        raise ValueError(f"expected a load profile offered by the target (a Python class name), {got(value)}")
    return value


class LoadSpec(Model):
    """How load is offered. `closed` (default): `users` users, each sending its next request when
    the last one answered and the profile's wait time passed, so a slow system is sent less;
    its latency is corrected for coordinated omission when measured (docs/results-schema.md).
    `open`: requests are due at a constant `rate` whatever the system does (as wrk2 and k6's
    constant-arrival-rate executor), `users` is the most that may be in flight at once, and each
    request's latency counts from when it was due."""

    profile: Annotated[str, BeforeValidator(_profile), WithJsonSchema(
        {"type": "string", "pattern": IDENT_PATTERN,
         "description": "a load profile offered by the target (x-continuum.load.profiles)"})]
    mode: Literal["closed", "open"] = "closed"
    rate: Rate | None = None        # open mode only: requests due per second
    users: Users = 20
    spawn_rate: SpawnRate = 20.0
    request_timeout_s: Duration(max_s=MAX_REQUEST_TIMEOUT_S) = Field(2.0, alias="request_timeout")
    host: Name | None = None        # an entry point instance or service; default: the first
    workers: Workers = 1            # 1: today's single Locust process (docs/scaling.md)
    # Set by `continuum run --remote-load-workers M --load-master HOST:PORT`, not in files: where
    # the machine is reached is the runner's business, not the experiment's.
    remote_workers: Internal[int] = internal(0)
    master_bind: Internal[str] = internal("127.0.0.1:0")

    @model_validator(mode="after")
    def _mode(self) -> "LoadSpec":
        if self.mode == "open" and self.rate is None:
            raise At("open mode sends requests at a constant rate: give one, e.g. rate: 200/s",
                     "mode")
        if isinstance(self.workers, int) and self.workers > self.users:
            raise At(f"{self.workers} load workers need at least as many users (users: {self.users}); "
                     "Locust's master gives each worker a share of the users", "workers")
        if self.mode == "closed" and self.rate is not None:
            raise At("rate is for open mode (a closed loop's rate is whatever the system answers); "
                     "add mode: open or remove rate", "rate", key=True)
        return self

    @model_validator(mode="after")
    def _fits_target(self, info: ValidationInfo) -> "LoadSpec":
        target: Target | None = (info.context or {}).get("target")
        if target is None:
            return self
        if not target.load_profiles:
            raise At(f"target {target.name!r} offers no load profiles "
                     "(x-continuum.load in its compose.yaml)", "profile")
        if self.profile not in target.load_profiles:
            raise At(f"unknown load profile {self.profile!r}; target {target.name!r} "
                     f"offers: {', '.join(target.load_profiles)}", "profile")
        if not target.entrypoints:
            raise ValueError(f"target {target.name!r} declares no entrypoints "
                             "(x-continuum.entrypoints), so there is nowhere to send load")
        if self.host is not None:
            valid: list[str] = []
            for ep in target.entrypoints:
                valid.extend((ep.service, *(target.expand(ep.service) or ())))
            if self.host not in valid:
                raise At(f"load host {self.host!r} is not an entrypoint; valid: "
                         f"{', '.join(dict.fromkeys(valid))}", "host")
        return self


def _rate(value: Any) -> float:
    import re

    if not isinstance(value, str) or len(value) > 32 or not re.fullmatch(RATE_PATTERN, value):
        raise ValueError(f"expected requests per second such as \"200/s\", {got(value)}")
    rate = float(value.replace(" ", "")[:-2])
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"{value!r}: the rate must be more than 0/s and at most {MAX_RATE:g}/s")
    return rate


Rate = Annotated[float, BeforeValidator(_rate), WithJsonSchema(
    {"type": "string", "pattern": RATE_PATTERN,
     "description": "requests started per second, such as 200/s (open mode)"})]


def _ratio(value: Any) -> float:
    pct = parse_percent(value, numbers=False)
    if not 0 < pct <= 100:
        raise ValueError(f"{value!r}: availability_below must be more than 0% and at most 100%")
    return round(pct / 100.0, 12)


class AbortRule(Model):
    availability_below: Annotated[float, BeforeValidator(_ratio), WithJsonSchema(
        {"type": "string", "pattern": PERCENT_PATTERN,
         "description": "a percentage such as 50%: stop when availability over `over` drops below it"})]
    over_s: Duration() = Field(alias="over")


def _target(value: Any, info: ValidationInfo) -> Any:
    """The file holds a path; the loader has loaded that target into the context."""
    if isinstance(value, Target):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a path to a target directory, {got(value)}")
    target = (info.context or {}).get("target")
    if target is None:
        raise ValueError("the target was not loaded (validate experiments with harness.loader)")
    return target


class Experiment(Model):
    api_version: Literal["continuum/v1"] = Field(alias="apiVersion")
    kind: Literal["Experiment"]
    name: Name
    description: Text(max_length=2000, min_length=1)
    target: Annotated[Target, BeforeValidator(_target), WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": 4096,
         "description": "a path to a target directory, relative to this file"})]
    duration_s: Duration(max_s=MAX_DURATION_S) = Field(alias="duration")
    load: LoadSpec
    faults: Annotated[tuple[FaultUnion, ...], Field(max_length=MAX_FAULTS)] = ()
    steady_state: Assertions = ()
    slo: Annotated[Assertions, Field(min_length=1)]
    abort_if: AbortRule | None = None
    probes: Annotated[tuple[ProbeSpec, ...], Field(max_length=MAX_PROBES)] = ()
    recovery_window_s: Duration() = Field(3.0, alias="recovery_window")
    min_samples: Bounded(int, ge=0, le=10_000_000) = 100
    # Runs of the experiment judged together on confidence intervals (harness.measure.trialset);
    # 1 is a single run judged on its own numbers. `continuum run --trials N` overrides it.
    trials: Bounded(int, ge=1, le=MAX_TRIALS,
                    description="times to run the experiment; with 2 or more, every assertion is "
                                "judged on a confidence interval over the trials") = 1
    source: Internal[Path | None] = internal(None)      # the file it came from
    # The file's text as the user wrote it (comments and all): reports show this, not a dump.
    source_text: Internal[str | None] = internal(None)

    @field_validator("probes")
    @classmethod
    def _probes(cls, probes: tuple[Any, ...], info: ValidationInfo) -> tuple[Any, ...]:
        check_probes(probes, info)
        return probes

    @model_validator(mode="after")
    def _timeline(self) -> "Experiment":
        # A fault without a name is called "<action>-<position>" (1-based): container.kill-1.
        named = tuple(f if f.name else f.model_copy(update={"name": f"{f.action}-{i + 1}"})
                      for i, f in enumerate(self.faults))
        object.__setattr__(self, "faults", named)   # still being built: frozen from here on
        duration = self.duration_s
        names: dict[str, int] = {}
        for i, f in enumerate(self.faults):
            if f.name in names:
                raise At(f"fault name {f.name!r} is already used by faults[{names[f.name]}]",
                         "faults", i, "name" if "name" in f.model_fields_set else "action")
            names[f.name] = i
            if f.at_s >= duration:
                raise At(f"fault starts at {_fmt_s(f.at_s)}, at or after the end of the "
                         f"experiment ({_fmt_s(duration)})", "faults", i, "at")
            if f.for_s is not None and f.at_s + f.for_s > duration + 1e-9:
                raise At(f"fault window {_fmt_s(f.at_s)} + {_fmt_s(f.for_s)} ends at "
                         f"{_fmt_s(f.at_s + f.for_s)}, after the experiment's duration "
                         f"({_fmt_s(duration)}); every fault must fit in the duration",
                         "faults", i, "for")
        if self.steady_state and self.faults and min(f.at_s for f in self.faults) <= 0:
            raise At("steady_state is checked on the baseline before the first fault, but "
                     "the first fault starts at 0s; start it later", "steady_state", key=True)
        steady_probes = [i for i, p in enumerate(self.probes) if p.use == "steady_state"]
        if steady_probes and self.faults and min(f.at_s for f in self.faults) <= 0:
            raise At("a steady_state probe is checked on the baseline before the first fault, "
                     "but the first fault starts at 0s; start it later", "probes", steady_probes[0], "as")
        limit = min(MAX_REQUEST_TIMEOUT_S, duration)
        if self.load.request_timeout_s > limit:
            raise At(f"{_fmt_s(self.load.request_timeout_s)} is longer than the maximum "
                     f"{_fmt_s(limit)} (the experiment's duration)", "load", "request_timeout")
        if self.abort_if is not None and self.abort_if.over_s > duration:
            raise At(f"{_fmt_s(self.abort_if.over_s)} is longer than the maximum "
                     f"{_fmt_s(duration)} (the experiment's duration)", "abort_if", "over")
        if self.recovery_window_s > duration:
            raise At(f"{_fmt_s(self.recovery_window_s)} is longer than the maximum "
                     f"{_fmt_s(duration)} (the experiment's duration)", "recovery_window")
        self._check_phases()
        monitored = self.target.monitoring is not None and self.target.monitoring.alertmanager is not None
        for key in ("slo", "steady_state"):
            for a in getattr(self, key):
                if a.metric in MONITOR_METRICS and not monitored:
                    raise At(f"{a.metric} is read from the target's Alertmanager, but target "
                             f"{self.target.name!r} declares none (x-continuum.monitoring."
                             "alertmanager)", key, a.metric, key=True)
                if a.metric in MONITOR_METRICS and key == "steady_state":
                    raise At(f"{a.metric} is about faults and alerts over the whole run; "
                             "put it under slo", key, a.metric, key=True)
                if a.metric in DRILL_METRICS and (key == "steady_state" or not any(
                        f.action == "drill.disaster" for f in self.faults)):
                    raise At(f"{a.metric} measures a backup and restore drill: put it under slo "
                             "of an experiment with a drill.disaster fault", key, a.metric, key=True)
        durability = self.target.durability
        if durability is None or durability.read is None:
            for key in ("slo", "steady_state"):
                for a in getattr(self, key):
                    if a.metric in AUDIT_METRICS or a.metric in DRILL_METRICS[2:]:
                        raise At(f"{a.metric} needs a read-back of the ids the system holds, but "
                                 f"target {self.target.name!r} declares no "
                                 "x-continuum.durability.read", key, a.metric, key=True)
        return self

    def _check_phases(self) -> None:
        """Phases named in assertion keys (`latency_p50@slow-app-1`) must exist: an SLO may name
        a fault (its window) or a steady phase; a steady-state check only a steady phase."""
        faults = [f.name for f in self.faults]
        for f in faults:
            if f in STEADY_PHASES:
                raise At(f"a fault may not be called {f!r}: {', '.join(STEADY_PHASES)} name the "
                         "phases around the faults", "faults", faults.index(f), "name")
        for key in ("slo", "steady_state"):
            allowed = (*STEADY_PHASES, *faults) if key == "slo" else STEADY_PHASES
            for a in getattr(self, key):
                if a.phase is None or a.phase in allowed:
                    continue
                why = ("steady state is checked on the baseline and the recovery only"
                       if key == "steady_state" else "no fault has that name")
                raise At(f"{a.key!r}: {why}; the phase after '@' is one of: "
                         f"{', '.join(allowed) or 'none (no faults)'}", key, a.key, key=True)

    @property
    def description_text(self) -> str:
        return self.description.strip()

    def config(self) -> dict[str, Any]:
        """The experiment as plain data for reports (the target by name and path only)."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"target", "source", "source_text"})
        data["target"] = {"name": self.target.name, "root": str(self.target.root)}
        data["faults"] = [dict(f.model_dump(mode="json", by_alias=True), family=f.family())
                          for f in self.faults]
        if self.source is not None:
            data["source"] = str(self.source)
        return data


def _fmt_s(s: float) -> str:
    if s >= 3600 and s % 3600 == 0:
        return f"{int(s // 3600)}h"
    if s >= 120 and s % 60 == 0:
        return f"{int(s // 60)}m"
    return f"{s:g}s"


__all__ = ["Experiment", "LoadSpec", "AbortRule", "FaultSpec", "MAX_DURATION_S",
           "MAX_REQUEST_TIMEOUT_S"]

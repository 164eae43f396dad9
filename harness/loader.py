"""Experiment files → frozen `Experiment` models, strictly, with ``file:line:column`` errors.

Three passes over one parsed file:

1. `harness.yamlsafe` parses it (bounded, no Python objects, positions recorded);
2. the JSON Schema in `harness.schema` checks its shape (types, required and unknown fields);
3. this module checks what needs the target and arithmetic (names exist, faults fit in the
   duration, units match the metric) and builds the model, with units normalised: seconds,
   ratios in [0, 1], Toxiproxy's own units for toxic attributes.

Nothing here imports Docker: validating a file cannot start a container.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness import schema
from harness.errors import InputError
from harness.model import (
    ACTIONS,
    METRICS,
    AbortRule,
    Assertion,
    Experiment,
    FaultSpec,
    LoadSpec,
    Selector,
    Target,
    Toxic,
)
from harness.schema import experiment_schema, parse_duration, parse_percent, parse_size
from harness.target import COMPOSE_FILES, load_target
from harness.yamlsafe import YamlDoc, field_name, load_yaml

MAX_DURATION_S = 6 * 3600.0         # one experiment
MAX_FAULT_WINDOW_S = 3600.0         # one fault's `for`: every fault has a bounded duration
MAX_REQUEST_TIMEOUT_S = 60.0
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Docker refuses less
AUDIT_METRICS = ("lost_writes", "unexpected_writes", "money_conserved")
EXPERIMENT_SUFFIXES = (".yaml", ".yml")

__all__ = ["load_experiment", "load_experiments", "experiment_schema", "parse_threshold",
           "experiment_files"]


# ─────────────────────────────────────── public API ───────────────────────────────────────


def load_experiment(path: Path | str, *, target: Path | str | None = None,
                    _targets: dict[Path, Target] | None = None) -> Experiment:
    """Load, validate and build one experiment (its target is loaded and checked too).

    `target` replaces the file's own target (pre-release verification: the same suite against
    a candidate or a twin); the experiment is then checked against that target instead."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error("an experiment file must be a mapping (apiVersion, kind, name, ...); "
                        f"got {'an empty file' if doc.data is None else type(doc.data).__name__}")
    schema.validate(doc, _SCHEMA)
    target_dir = Path(target).resolve() if target is not None else _target_dir(doc, Path(path))
    cache = _targets if _targets is not None else {}
    loaded = cache.get(target_dir)
    if loaded is None:
        loaded = cache[target_dir] = load_target(target_dir)
    return _Builder(doc, loaded, Path(path)).build()


def experiment_files(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given; a directory is the suite of *.yaml / *.yml files directly in it (sorted,
    no dotfiles). Subfolders are suites of their own (experiments/calibration,
    experiments/fragile) and are run by naming them, so `continuum run experiments/` is the
    standard suite and nothing else."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f for f in p.glob("*")
                if f.suffix in EXPERIMENT_SUFFIXES and f.is_file() and not f.name.startswith("."))
            if not found:
                raise InputError("directory holds no *.yaml or *.yml experiment files",
                                 where=f"{p}:1:1")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise InputError("no such file or directory", where=f"{p}:1:1")
    return out


def load_experiments(paths: Iterable[Path | str], *, target: Path | str | None = None) -> list[Experiment]:
    """Load a suite: files and directories (not recursive). Experiment names must be unique."""
    targets: dict[Path, Target] = {}
    seen: dict[str, Path] = {}
    out: list[Experiment] = []
    for f in experiment_files(paths):
        if f.resolve() in {e.source for e in out}:
            continue                                    # the same file named twice
        exp = load_experiment(f, target=target, _targets=targets)
        if exp.name in seen:
            doc = load_yaml(f)
            raise doc.error(f"experiment name {exp.name!r} is also used by {seen[exp.name]}; "
                            "names must be unique in a suite", ("name",))
        seen[exp.name] = f
        out.append(exp)
    return out


_SCHEMA = experiment_schema()


def parse_threshold(metric: str, text: str) -> Assertion:
    """`"<op> <number><unit>"` for a metric → Assertion in the metric's base unit.

    ratio: a percentage ("99.9%" → 0.999); seconds: ms|s|m; count: a bare integer; rate: "/s".
    Raises ValueError with a readable reason.
    """
    kind = METRICS.get(metric)
    if kind is None:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    m = re.fullmatch(r"\s*(>=|<=|==|>|<)\s*([0-9]+(?:\.[0-9]+)?)\s*(%|ms|s|m|/s)?\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not a comparison such as \">= 99.9%\", \"<= 800ms\" "
                         "or \"== 0\"")
    op, number, unit = m.group(1), m.group(2), m.group(3) or ""
    value = float(number)
    if kind == "ratio":
        if unit != "%":
            example = f"{value * 100:g}%" if not unit and value <= 1 else f"{number}%"
            raise ValueError(f"{metric} is a ratio: write it as a percentage, e.g. \"{op} "
                             f"{example}\"")
        if value > 100:
            raise ValueError(f"{metric}: {number}% is more than 100%")
        threshold = round(value / 100.0, 12)
    elif kind == "seconds":
        if unit not in ("ms", "s", "m"):
            raise ValueError(f"{metric} is a time: give a unit (ms, s or m), e.g. \"{op} "
                             f"{number}ms\"")
        threshold = value * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
    elif kind == "count":
        if unit or "." in number:
            raise ValueError(f"{metric} is a count: write a whole number without a unit, "
                             f"e.g. \"{op} {number.split('.')[0]}\"")
        threshold = float(int(number))
        if metric == "money_conserved" and threshold not in (0.0, 1.0):
            raise ValueError("money_conserved is 1 when money is conserved and 0 when not; "
                             "write \"== 1\"")
    else:  # rate
        if unit != "/s":
            raise ValueError(f"{metric} is a rate: write it per second, e.g. \"{op} {number}/s\"")
        threshold = value
    return Assertion(metric=metric, op=op, threshold=threshold, text=text.strip())  # type: ignore[arg-type]


# ─────────────────────────────────────── building ───────────────────────────────────────


def _target_dir(doc: YamlDoc, path: Path) -> Path:
    rel = doc.data["target"]
    if "\x00" in rel:
        raise doc.error("target path contains a NUL byte", ("target",))
    target = (path.parent / rel).resolve()
    if not target.is_dir():
        raise doc.error(f"target {rel!r} is not a directory (resolved to {target})", ("target",))
    if not any((target / n).is_file() for n in COMPOSE_FILES):
        raise doc.error(f"target {rel!r} has no {COMPOSE_FILES[0]} (looked in {target})",
                        ("target",))
    return target


class _Builder:
    def __init__(self, doc: YamlDoc, target: Target, path: Path) -> None:
        self.doc = doc
        self.d: dict[str, Any] = doc.data
        self.t = target
        self.path = path
        self.services = {s.name: s for s in target.services}
        self.instances = {i: s for i, s in target.instances()}
        self.roles = {r.name: r for r in target.roles}

    def err(self, message: str, *path: str | int, key: bool = False) -> InputError:
        return self.doc.error(message, tuple(path), key=key)

    def seconds(self, *path: str | int, positive: bool = True, limit: float | None = None,
                what: str = "") -> float:
        node: Any = self.d
        for p in path:
            node = node[p]
        try:
            s = parse_duration(node)
        except ValueError as exc:
            raise self.err(str(exc), *path) from None
        if positive and s <= 0:
            raise self.err(f"{node!r} must be longer than zero", *path)
        if limit is not None and s > limit:
            raise self.err(f"{node!r} is longer than the maximum {_fmt_s(limit)}{what}", *path)
        return s

    def build(self) -> Experiment:
        duration = self.seconds("duration", limit=MAX_DURATION_S)
        load = self._load(duration)
        faults = self._faults(duration)
        steady = self._assertions("steady_state")
        slo = self._assertions("slo")
        if steady and faults and min(f.at_s for f in faults) <= 0:
            raise self.err("steady_state is checked on the baseline before the first fault, but "
                           "the first fault starts at 0s; start it later", "steady_state", key=True)
        abort = None
        if "abort_if" in self.d:
            ratio = parse_percent(self.d["abort_if"]["availability_below"]) / 100.0
            if not 0 < ratio <= 1:
                raise self.err("availability_below must be more than 0% and at most 100%",
                               "abort_if", "availability_below")
            over = self.seconds("abort_if", "over", limit=duration,
                                what=" (the experiment's duration)")
            abort = AbortRule(availability_below=round(ratio, 12), over_s=over)
        recovery = self.seconds("recovery_window", limit=duration,
                                what=" (the experiment's duration)") \
            if "recovery_window" in self.d else 3.0
        return Experiment(
            name=self.d["name"],
            description=self.d["description"].strip(),
            target=self.t.root,
            duration_s=duration,
            load=load,
            faults=faults,
            steady_state=steady,
            slo=slo,
            abort_if=abort,
            recovery_window_s=recovery,
            min_samples=self.d.get("min_samples", 100),
            source=self.path.resolve(),
        )

    # ─── load ───

    def _load(self, duration: float) -> LoadSpec:
        raw = self.d["load"]
        if not self.t.load_profiles:
            raise self.err(f"target {self.t.name!r} offers no load profiles "
                           "(x-continuum.load in its compose.yaml)", "load", "profile")
        if raw["profile"] not in self.t.load_profiles:
            raise self.err(f"unknown load profile {raw['profile']!r}; target {self.t.name!r} "
                           f"offers: {', '.join(self.t.load_profiles)}", "load", "profile")
        host = raw.get("host")
        if not self.t.entrypoints:
            raise self.err(f"target {self.t.name!r} declares no entrypoints "
                           "(x-continuum.entrypoints), so there is nowhere to send load", "load")
        if host is not None:
            valid: list[str] = []
            for ep in self.t.entrypoints:
                valid.append(ep.service)
                if ep.service in self.services:
                    valid.extend(self.services[ep.service].instance_names())
            if host not in valid:
                raise self.err(f"load host {host!r} is not an entrypoint; valid: "
                               f"{', '.join(dict.fromkeys(valid))}", "load", "host")
        timeout = self.seconds("load", "request_timeout",
                               limit=min(MAX_REQUEST_TIMEOUT_S, duration)) \
            if "request_timeout" in raw else 2.0
        return LoadSpec(profile=raw["profile"], users=raw.get("users", 20),
                        spawn_rate=float(raw.get("spawn_rate", 20.0)),
                        request_timeout_s=timeout, host=host)

    # ─── assertions ───

    def _assertions(self, key: str) -> tuple[Assertion, ...]:
        out = []
        for metric, value in (self.d.get(key) or {}).items():
            if metric in AUDIT_METRICS and self.t.audit is None:
                raise self.err(f"{metric} needs the durability audit, but target "
                               f"{self.t.name!r} declares no x-continuum.audit", key, metric,
                               key=True)
            texts = [(value, (key, metric))] if isinstance(value, str) else \
                [(v, (key, metric, j)) for j, v in enumerate(value)]
            for text, path in texts:
                try:
                    out.append(parse_threshold(metric, text))
                except ValueError as exc:
                    raise self.err(str(exc), *path) from None
        return tuple(out)

    # ─── faults ───

    def _faults(self, duration: float) -> tuple[FaultSpec, ...]:
        out: list[FaultSpec] = []
        names: dict[str, int] = {}
        for i, raw in enumerate(self.d.get("faults") or []):
            f = self._fault(i, raw, duration)
            if f.name in names:
                raise self.err(f"fault name {f.name!r} is already used by faults[{names[f.name]}]",
                               "faults", i, "name" if "name" in raw else "action")
            names[f.name] = i
            out.append(f)
        return tuple(out)

    def _fault(self, i: int, raw: dict[str, Any], duration: float) -> FaultSpec:
        at = ("faults", i)
        action = raw["action"]
        family = ACTIONS[action]
        name = raw.get("name") or f"{action}-{i + 1}"
        at_s = self.seconds(*at, "at", positive=False)
        for_s = self.seconds(*at, "for", limit=MAX_FAULT_WINDOW_S) if "for" in raw else None
        if at_s >= duration:
            raise self.err(f"fault starts at {_fmt_s(at_s)}, at or after the end of the "
                           f"experiment ({_fmt_s(duration)})", *at, "at")
        if for_s is not None and at_s + for_s > duration + 1e-9:
            raise self.err(f"fault window {_fmt_s(at_s)} + {_fmt_s(for_s)} ends at "
                           f"{_fmt_s(at_s + for_s)}, after the experiment's duration "
                           f"({_fmt_s(duration)}); every fault must fit in the duration",
                           *at, "for")
        kw: dict[str, Any] = {"name": name, "action": action, "at_s": at_s, "for_s": for_s}
        if "select" in raw:
            kw["select"] = self._selector(raw["select"], at + ("select",), action)
        if action.startswith("network.") and family == "network":
            kw["links"] = self._links(raw["link"], at + ("link",))
            kw["toxics"] = self._toxics(action, raw, at)
        elif action == "network.loss":
            pct = self._percent(raw["percent"], at + ("percent",))
            kw["params"] = (("percent", pct),)
        elif action == "partition":
            kw["groups"] = self._groups(raw["groups"], at + ("groups",))
            kw["one_way"] = raw.get("direction", "both") == "one-way"
        elif action == "resource.cpu":
            kw["params"] = (("cpus", float(raw["cpus"])),)
        elif action == "resource.memory":
            try:
                limit = parse_size(raw["limit"])
            except ValueError as exc:
                raise self.err(str(exc), *at, "limit") from None
            if limit < MIN_MEMORY_BYTES:
                raise self.err(f"memory limit {raw['limit']!r} is below Docker's minimum of 6MiB",
                               *at, "limit")
            kw["params"] = (("memory_bytes", float(limit)),)
        elif action == "container.rolling_restart":
            sel: Selector = kw["select"]
            if sel.role is not None:
                raise self.err("a rolling restart goes through a service's instances; select "
                               "a service, not a role", *at, "select", "role")
        return FaultSpec(**kw)

    def _percent(self, value: Any, path: tuple) -> float:
        try:
            pct = parse_percent(value)
        except ValueError as exc:
            raise self.doc.error(str(exc), path) from None
        if not 0 < pct <= 100:
            raise self.doc.error(f"{value!r} must be more than 0% and at most 100%", path)
        return pct

    def _selector(self, raw: dict[str, Any], path: tuple, action: str) -> Selector:
        if ("service" in raw) == ("role" in raw):
            raise self.doc.error("select needs exactly one of 'service' or 'role'", path)
        default_pick = "all" if action == "container.rolling_restart" else "one"
        pick = raw.get("pick", default_pick)
        size: int | None = None
        if "service" in raw:
            svc = raw["service"]
            if svc in self.services:
                size = self.services[svc].replicas
            elif svc in self.instances:
                size = 1
            elif svc in self.roles:
                raise self.doc.error(f"{svc!r} is a role; write 'role: {svc}'", path + ("service",))
            else:
                raise self.doc.error(
                    f"unknown service or instance {svc!r}; services: "
                    f"{', '.join(self.services)}; instances: {', '.join(self.instances)}",
                    path + ("service",))
        else:
            role = raw["role"]
            if role not in self.roles:
                raise self.doc.error(
                    f"unknown role {role!r}; roles of target {self.t.name!r}: "
                    f"{', '.join(self.roles) or 'none (x-continuum.roles)'}", path + ("role",))
        for field, wanted in (("count", "count"), ("percent", "percent")):
            if field in raw and pick != wanted:
                raise self.doc.error(f"{field!r} only goes with 'pick: {wanted}' "
                                     f"(pick is {pick!r})", path + (field,), key=True)
            if pick == wanted and field not in raw:
                raise InputError(f"'pick: {wanted}' needs {field!r}", where=self.doc.where(path),
                                 field=f"{field_name(path)}.{field}")
        count = raw.get("count")
        if count is not None and size is not None and count > size:
            raise self.doc.error(f"count {count} is more than the {size} instance(s) of "
                                 f"{raw['service']!r}", path + ("count",))
        percent = self._percent(raw["percent"], path + ("percent",)) if "percent" in raw else None
        return Selector(service=raw.get("service"), role=raw.get("role"), pick=pick,
                        count=count, percent=percent, seed=raw.get("seed"))

    def _links(self, raw: str | list[str], path: tuple) -> tuple[str, ...]:
        exprs = [(raw, path)] if isinstance(raw, str) else \
            [(r, path + (j,)) for j, r in enumerate(raw)]
        out: list[str] = []
        for expr, p in exprs:
            client, _, up = expr.partition("->")
            if up in self.services:
                ups = set(self.services[up].instance_names())
            elif up in self.instances:
                ups = {up}
            else:
                raise self.doc.error(f"link {expr!r}: {up!r} is not a service or instance of "
                                     f"target {self.t.name!r}; links: {self._link_list()}", p)
            found = [l.name for l in self.t.links if l.client == client and l.upstream in ups]
            if not found:
                raise self.doc.error(f"no link {expr!r} in target {self.t.name!r}; links: "
                                     f"{self._link_list()}", p)
            out.extend(n for n in found if n not in out)
        return tuple(out)

    def _link_list(self) -> str:
        return ", ".join(f"{l.client}->{l.upstream}" for l in self.t.links) or \
            "none (x-continuum.links)"

    def _toxics(self, action: str, raw: dict[str, Any], at: tuple) -> tuple[Toxic, ...]:
        kind = action.split(".", 1)[1]
        if kind == "down":
            return ()

        def ms(key: str, default: float | None = None) -> int:
            return self._whole(key, raw, at, 1000, "milliseconds", default)

        def size(key: str, default: int | None = None) -> int:
            if key not in raw:
                assert default is not None
                return default
            try:
                return parse_size(raw[key])
            except ValueError as exc:
                raise self.err(str(exc), *at, key) from None

        if kind == "latency":
            attrs = (("latency", ms("latency")), ("jitter", ms("jitter", 0)))
        elif kind == "bandwidth":
            rate = raw["rate"]
            if isinstance(rate, str):
                n, unit = int(rate.rstrip("KMB/s ").strip()), rate.strip()[-4:]
                rate = n * (1000 if unit == "MB/s" else 1)
            attrs = (("rate", int(rate)),)
        elif kind in ("timeout", "reset_peer"):
            attrs = (("timeout", ms("timeout", 0)),)
        elif kind == "slow_close":
            attrs = (("delay", ms("delay")),)
        elif kind == "slicer":
            avg, var = size("average_size"), size("size_variation", 0)
            if avg < 1:
                raise self.err("average_size must be at least 1 byte", *at, "average_size")
            if var >= avg:
                raise self.err("size_variation must be smaller than average_size",
                               *at, "size_variation")
            attrs = (("average_size", avg), ("size_variation", var),
                     ("delay", self._whole("delay", raw, at, 1_000_000, "microseconds", 0)))
        elif kind == "limit_data":
            attrs = (("bytes", size("bytes")),)
        else:  # pragma: no cover - the schema only lets known actions through
            raise self.err(f"unknown network action {action!r}", *at, "action")
        stream = raw.get("stream", "downstream")
        streams = ("upstream", "downstream") if stream == "both" else (stream,)
        toxicity = float(raw.get("toxicity", 1.0))
        return tuple(Toxic(type=kind, attributes=attrs, stream=s, toxicity=toxicity)  # type: ignore[arg-type]
                     for s in streams)

    def _whole(self, key: str, raw: dict[str, Any], at: tuple, per_s: int, unit: str,
               default: float | None) -> int:
        if key not in raw:
            assert default is not None
            return int(default)
        s = self.seconds(*at, key, positive=False, limit=MAX_FAULT_WINDOW_S)
        n = round(s * per_s)
        if abs(n - s * per_s) > 1e-6:
            raise self.err(f"{raw[key]!r} is not a whole number of {unit}", *at, key)
        return n

    def _groups(self, raw: list[list[str]], path: tuple) -> tuple[tuple[str, ...], tuple[str, ...]]:
        expanded: list[set[str]] = []
        for g, group in enumerate(raw):
            members: set[str] = set()
            for j, name in enumerate(group):
                if name in self.services:
                    members.update(self.services[name].instance_names())
                elif name in self.instances:
                    members.add(name)
                elif name in self.roles:
                    members.update(self.roles[name].members)    # static roles; live ones later
                else:
                    raise self.doc.error(
                        f"{name!r} is not a service, instance or role of target "
                        f"{self.t.name!r}; services: {', '.join(self.services)}; roles: "
                        f"{', '.join(self.roles) or 'none'}", path + (g, j))
            expanded.append(members)
        overlap = expanded[0] & expanded[1]
        if overlap:
            raise self.doc.error(f"{', '.join(sorted(overlap))} would be on both sides of the "
                                 "partition", path)
        return tuple(raw[0]), tuple(raw[1])


def _fmt_s(s: float) -> str:
    if s >= 3600 and s % 3600 == 0:
        return f"{int(s // 3600)}h"
    if s >= 120 and s % 60 == 0:
        return f"{int(s // 60)}m"
    return f"{s:g}s"

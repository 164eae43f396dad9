"""Taking one sample of a probe (the specs are `harness.model.probes`).

    tools = ProbeTools(prometheus=prom, urls=..., instances=..., exec=...)
    sample = take(probe, tools, now=time.monotonic())      # ProbeSample(ok=True|False|None)

Three-valued, and the harness's trouble is never the system's fault:

* promql: Prometheus not answering, an empty result ("a metric over nothing"), NaN → unknown;
  otherwise ok when *every* series meets `value` (the value kept is the worst series').
* http: no answer, a wrong status or a missing body text → failed: the system did not answer
  as it should. Every instance of a service is asked; all must pass.
* cmd: exit code and output judged → ok or failed; when the command could not be started at
  all (the engine refused the exec) → unknown.

Nothing here knows Docker: the orchestrator hands in how to reach an instance (`ProbeTools`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import requests

from harness.errors import HarnessError, MonitorError
from harness.model.monitoring import ProbeSample
from harness.model.probes import CmdProbe, HttpProbe, PromqlProbe
from harness.monitor.prometheus import PrometheusClient

MAX_BODY_READ = 256 * 1024


@dataclass
class ProbeTools:
    prometheus: PrometheusClient | None
    # (service or instance, container port) → [(instance, "http://127.0.0.1:PORT"), ...]
    urls: Callable[[str, int], list[tuple[str, str]]]
    # service or instance → its instance names
    instances: Callable[[str], list[str]]
    # (instance, argv, timeout_s) → (exit code, output); HarnessError when it cannot run
    exec: Callable[[str, list[str], float], tuple[int, str]]


def take(probe: Any, tools: ProbeTools, now: float | None = None) -> ProbeSample:
    t = time.monotonic() if now is None else now
    if isinstance(probe, PromqlProbe):
        return _promql(probe, tools, t)
    if isinstance(probe, HttpProbe):
        return _http(probe, tools, t)
    if isinstance(probe, CmdProbe):
        return _cmd(probe, tools, t)
    raise TypeError(f"not a probe: {probe!r}")


def _promql(p: PromqlProbe, tools: ProbeTools, t: float) -> ProbeSample:
    if tools.prometheus is None:
        return ProbeSample(p.name, t, None, None, "no Prometheus in this run")
    try:
        result = tools.prometheus.query(p.promql, timeout_s=p.timeout_s)
    except MonitorError as exc:
        return ProbeSample(p.name, t, None, None, f"unknown: {exc}")
    if not result.values:
        return ProbeSample(p.name, t, None, None, "unknown: the query returned no series")
    if any(math.isnan(v.value) for v in result.values):
        nan = next(v for v in result.values if math.isnan(v.value))
        return ProbeSample(p.name, t, None, None, f"unknown: NaN for {nan.describe()}")
    failing = [v for v in result.values if not p.value.holds(v.value)]
    if failing:
        worst = failing[0]
        where = "" if len(result.values) == 1 else f" for {worst.describe()}"
        more = f" (and {len(failing) - 1} more series)" if len(failing) > 1 else ""
        return ProbeSample(p.name, t, False, worst.value,
                           f"value {_num(worst.value)}{where} is not {p.value.text}{more}")
    # All pass: keep the series closest to the line (the least margin).
    best = min(result.values, key=lambda v: abs(v.value - p.value.threshold))
    return ProbeSample(p.name, t, True, best.value, f"value {_num(best.value)} meets {p.value.text}")


def _http(p: HttpProbe, tools: ProbeTools, t: float) -> ProbeSample:
    try:
        urls = tools.urls(p.http.service, p.http.port)
    except HarnessError as exc:
        return ProbeSample(p.name, t, None, None, f"unknown: {exc}")
    if not urls:
        return ProbeSample(p.name, t, None, None, f"unknown: no instance of {p.http.service}")
    bad: list[str] = []
    for instance, base in urls:
        try:
            with requests.get(f"{base}{p.http.path}", timeout=p.timeout_s, stream=True) as r:
                body = r.raw.read(MAX_BODY_READ, decode_content=True) if p.body_contains else b""
                status = r.status_code
        except requests.Timeout:
            bad.append(f"{instance}: no answer within {p.timeout_s:g} s")
            continue
        except (requests.RequestException, OSError) as exc:
            bad.append(f"{instance}: {type(exc).__name__}")
            continue
        if status != p.status:
            bad.append(f"{instance}: status {status}")
        elif p.body_contains and p.body_contains.encode() not in body:
            bad.append(f"{instance}: {p.body_contains!r} not in the body")
    if bad:
        return ProbeSample(p.name, t, False, None, "; ".join(bad))
    return ProbeSample(p.name, t, True, None, f"{len(urls)} answered {p.check_text()}")


def _cmd(p: CmdProbe, tools: ProbeTools, t: float) -> ProbeSample:
    names = tools.instances(p.in_)
    bad: list[str] = []
    for name in names:
        try:
            code, out = tools.exec(name, list(p.cmd), p.timeout_s)
        except HarnessError as exc:
            return ProbeSample(p.name, t, None, None, f"unknown: could not run in {name}: {exc}")
        if code != p.exit_code:
            tail = out.strip().splitlines()[-1][:120] if out.strip() else ""
            bad.append(f"{name}: exit {code}" + (f" ({tail})" if tail else ""))
        elif p.output_contains and p.output_contains not in out:
            bad.append(f"{name}: {p.output_contains!r} not in its output")
    if not names:
        return ProbeSample(p.name, t, None, None, f"unknown: no instance of {p.in_}")
    if bad:
        return ProbeSample(p.name, t, False, None, "; ".join(bad))
    return ProbeSample(p.name, t, True, None, f"{len(names)} ran with {p.check_text()}")


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.6g}"

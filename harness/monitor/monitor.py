"""The monitoring stage of a run: alerts followed, probes taken, abort_if probes watched.

    with Monitor(experiment, prometheus_url, alertmanager_url, tools) as monitor:   # ready, quiet
        monitor.start(t0, baseline_end_t)          # when load starts
        ...  monitor.on_event(ev)                  # FaultInjected / FaultReverted (during_fault)
        ...  for ev in monitor.drain(): emit(ev)   # AlertFired, AlertResolved, ProbeChanged
        ...  monitor.abort_reason()                # the first abort_if probe sample that failed
        monitor.finish()                           # end probes, a last poll, threads stopped
        record = monitor.record()                  # MonitorRecord for the RunRecord

Entering waits (bounded) until Prometheus and Alertmanager answer, then until every scrape
target is up and no alert is pending or firing: the stack was just started, and an alert left
over from start-up would otherwise count as an alert without a fault. A server that never
answers is a `MonitorError` (the run is an ERROR, never a FAIL); a target that stays down is
the system's state, said in a warning and recorded.

Threads: one polls Alertmanager every `poll_s`, one per probe. Events are queued and emitted by
the orchestrator's own loop (`drain`), so listeners only ever run on its thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

from harness.errors import MonitorError
from harness.events import AlertFired, AlertResolved, FaultInjected, FaultReverted, ProbeChanged
from harness.model.monitoring import AlertRuleInfo, MonitorRecord, ProbeSample
from harness.monitor.alertmanager import AlertmanagerClient
from harness.monitor.alerts import AlertTracker, Fired
from harness.monitor.probes import ProbeTools, take
from harness.monitor.prometheus import PrometheusClient
from harness.timestamps import WallClock

log = logging.getLogger(__name__)

POLL_S = 0.25                   # Alertmanager poll: the precision of "resolved" and of seen_t
READY_TIMEOUT_S = 30.0          # for the servers to answer at all
QUIET_TIMEOUT_S = 20.0          # for every target to be up and no alert left from start-up
INSTANT_FAULT_S = 5.0           # an instantaneous fault counts as in effect this long (= phases' grace)
FAULT_TICK_S = 0.05             # a during_fault probe notices a fault within this


class Monitor:
    def __init__(self, probes: Sequence[Any], prometheus_url: str | None, alertmanager_url: str | None,
                 tools: ProbeTools | None = None, *, poll_s: float = POLL_S,
                 ready_timeout_s: float = READY_TIMEOUT_S, quiet_timeout_s: float = QUIET_TIMEOUT_S,
                 say: Callable[[str, str], None] | None = None, clock: WallClock | None = None):
        self.probes = tuple(probes)
        self.prometheus = PrometheusClient(prometheus_url) if prometheus_url else None
        self.alertmanager = AlertmanagerClient(alertmanager_url) if alertmanager_url else None
        self.tools = replace(tools or ProbeTools(None, lambda s, p: [], lambda s: [], _no_exec),
                             prometheus=self.prometheus)
        self.poll_s = poll_s
        self.ready_timeout_s = ready_timeout_s
        self.quiet_timeout_s = quiet_timeout_s
        self.say = say or (lambda text, level="info": log.info(text))
        self.tracker = AlertTracker(clock or WallClock())
        self.rules: tuple[AlertRuleInfo, ...] = ()
        self.scrape_interval_s = 0.0
        self.scrape_timeout_s = 0.0
        self.timings: dict[str, float] = {}
        self.errors: list[str] = []
        self._broken: list[str] = []                    # threads that died of a bug
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._queue: list[Any] = []
        self._samples: list[ProbeSample] = []
        self._last_ok: dict[str, bool | None] = {}
        self._abort: str | None = None
        self._active: dict[str, float | None] = {}      # fault name → expiry (None: until reverted)
        self._started = False
        self._finished = False

    # ───────────────────────────── up ─────────────────────────────

    def __enter__(self) -> "Monitor":
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        t0 = time.monotonic()
        self._wait_ready()
        self.timings["ready_s"] = time.monotonic() - t0
        if self.prometheus is not None:
            self.rules = tuple(AlertRuleInfo(r.name, r.for_s, r.interval_s) for r in self.prometheus.alert_rules())
            t = time.monotonic()
            self._wait_quiet()
            self.timings["quiet_s"] = time.monotonic() - t
        if self.alertmanager is not None:
            self._poll_once()                           # the first poll: what fires at the start
            self._spawn("monitor-alerts", self._poll_loop)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        servers = [s for s in (self.prometheus, self.alertmanager) if s is not None]
        waiting = list(servers)
        while waiting:
            waiting = [s for s in waiting if not s.ready()]
            if not waiting:
                return
            if time.monotonic() > deadline:
                names = ", ".join(f"{type(s).__name__.removesuffix('Client')} at {s.base_url}" for s in waiting)
                raise MonitorError(f"{names} not ready after {self.ready_timeout_s:.0f} s")
            time.sleep(0.1)

    def _wait_quiet(self) -> None:
        assert self.prometheus is not None
        deadline = time.monotonic() + self.quiet_timeout_s
        while True:
            targets = self.prometheus.scrape_targets()
            down = [f"{t.job}/{t.instance}" for t in targets if t.health != "up"]
            alerts = self.prometheus.pending_or_firing()
            held = self.alertmanager.alerts() if self.alertmanager is not None else ()
            if targets:
                self.scrape_interval_s = max(t.interval_s for t in targets)
                self.scrape_timeout_s = max(t.timeout_s for t in targets)
            if not down and not alerts and not held:
                return
            if time.monotonic() > deadline:
                what = []
                if down:
                    what.append(f"scrape targets down: {', '.join(down[:6])}")
                if alerts or held:
                    names = sorted({a for a, _ in alerts} | {a.name for a in held})
                    what.append(f"alerts pending or firing: {', '.join(names[:6])}")
                self.say(f"monitoring not quiet after {self.quiet_timeout_s:.0f} s ({'; '.join(what)}); "
                         "alerts firing now count as alerts without a fault", "warning")
                return
            time.sleep(0.2)

    def start(self, t0: float, baseline_end_t: float) -> None:
        """Load has started at `t0`; the baseline ends (the first fault is due) at `baseline_end_t`."""
        if self._started:
            return
        self._started = True
        for p in self.probes:
            if p.mode in ("continuous", "during_fault"):
                self._spawn(f"probe-{p.name}", self._repeat, p, t0)
            elif p.mode in ("start", "edge"):
                self._spawn(f"probe-{p.name}", self._once_at, p, baseline_end_t)

    # ───────────────────────────── during the run ─────────────────────────────

    def on_event(self, ev: Any) -> None:
        """Faults in effect, for during_fault probes (subscribe to FaultInjected/FaultReverted)."""
        with self._lock:
            if isinstance(ev, FaultInjected):
                self._active[ev.fault.name] = None if ev.reversible else ev.t + INSTANT_FAULT_S
            elif isinstance(ev, FaultReverted):
                self._active.pop(ev.fault.name, None)

    def fault_active(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return any(exp is None or now < exp for exp in self._active.values())

    def drain(self) -> list[Any]:
        with self._lock:
            out, self._queue = self._queue, []
        return out

    def abort_reason(self) -> str | None:
        with self._lock:
            return self._abort

    def finish(self) -> None:
        """The run's duration is over (faults reverted, load still on): take end probes,
        poll once more, stop every thread."""
        if self._finished:
            return
        self._finished = True
        enders = [p for p in self.probes if p.mode in ("end", "edge")]
        threads = [threading.Thread(target=self._guard, args=(f"probe-end-{p.name}", self._take, p),
                                    name=f"probe-end-{p.name}", daemon=True) for p in enders]
        for th in threads:
            th.start()
        for th, p in zip(threads, enders):
            th.join(timeout=p.timeout_s * self._fanout(p) + 5)
        self._stop.set()
        for th in self._threads:
            th.join(timeout=10)
        if self.alertmanager is not None:
            self._poll_once()
            self.tracker.close_gap(time.monotonic())

    def check(self) -> None:
        """Raise MonitorError if one of the threads died of a bug (what it saw is incomplete)."""
        with self._lock:
            broken = list(self._broken)
        if broken:
            raise MonitorError("; ".join(broken))

    def close(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(timeout=10)
        for client in (self.prometheus, self.alertmanager):
            if client is not None:
                client.close()

    # ───────────────────────────── the record ─────────────────────────────

    def record(self) -> MonitorRecord:
        with self._lock:
            samples = tuple(sorted(self._samples, key=lambda s: (s.t, s.probe)))
        return MonitorRecord(
            prometheus=self.prometheus.base_url if self.prometheus else "",
            alertmanager=self.alertmanager.base_url if self.alertmanager else None,
            rules=self.rules, scrape_interval_s=self.scrape_interval_s,
            scrape_timeout_s=self.scrape_timeout_s,
            started_t=self.tracker.first_poll_t, observed_until_t=self.tracker.last_poll_t,
            alerts=self.tracker.episodes(), probe_samples=samples,
            gaps=tuple(self.tracker.gaps), errors=tuple(self.errors[:20]))

    # ───────────────────────────── threads ─────────────────────────────

    def _spawn(self, name: str, fn: Callable[..., None], *args: Any) -> None:
        th = threading.Thread(target=self._guard, args=(name, fn, *args), name=name, daemon=True)
        self._threads.append(th)
        th.start()

    def _guard(self, name: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:       # a bug here must not pass silently: the run is an ERROR
            log.exception("monitor thread %s failed", name)
            with self._lock:
                self.errors.append(f"{name}: unexpected {type(exc).__name__}: {exc}")
                self._broken.append(f"monitor thread {name} failed: {type(exc).__name__}: {exc}")

    def _poll_once(self) -> None:
        assert self.alertmanager is not None
        now = time.monotonic()
        try:
            alerts = self.alertmanager.alerts()
        except MonitorError as exc:
            with self._lock:
                self.tracker.missed(now)
                if not self.errors or self.errors[-1] != str(exc):
                    self.errors.append(str(exc))
            return
        with self._lock:
            changes = self.tracker.observe(alerts, time.monotonic())
            for c in changes:
                self._queue.append(AlertFired(c.episode) if isinstance(c, Fired) else AlertResolved(c.episode))

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._poll_once()

    def _repeat(self, probe: Any, t0: float) -> None:
        next_t = t0
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_t:
                self._stop.wait(next_t - now)
                continue
            if probe.mode == "during_fault" and not self.fault_active(now):
                self._stop.wait(FAULT_TICK_S)
                next_t = time.monotonic()       # the first sample as soon as a fault lands
                continue
            self._take(probe)
            next_t = max(next_t + probe.interval_s, time.monotonic())

    def _fanout(self, probe: Any) -> int:
        """How many instances one sample of `probe` asks (each within its timeout)."""
        where = getattr(probe, "in_", None) or getattr(getattr(probe, "http", None), "service", None)
        return max(1, len(self.tools.instances(where))) if where else 1

    def _once_at(self, probe: Any, at: float) -> None:
        if self._stop.wait(max(0.0, at - time.monotonic())):
            return                              # the run ended (or aborted) first: no sample
        self._take(probe)

    def _take(self, probe: Any) -> None:
        sample = take(probe, self.tools)
        with self._lock:
            self._samples.append(sample)
            if self._last_ok.get(probe.name, "none") != sample.ok:
                self._queue.append(ProbeChanged(sample, probe.use))
            self._last_ok[probe.name] = sample.ok
            if probe.use == "abort_if" and sample.ok is False and self._abort is None:
                self._abort = f"abort_if: probe {probe.name}: {sample.detail}"


def _no_exec(instance: str, argv: list[str], timeout_s: float) -> tuple[int, str]:
    raise MonitorError("commands cannot be run in this run")

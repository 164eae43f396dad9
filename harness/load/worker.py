"""The load worker: Locust as a library, in its own process.

    python -m harness.load.worker      (config: one JSON line on stdin, frames on stdout)

Importing locust monkey-patches the whole process with gevent, so this module is the only
place that imports it, and the orchestrator talks to it over pipes (see `harness.load.wire`).

Life of a worker:
 1. take stdout for the frames and point fd 1 at stderr, so a `print` in a locustfile (or a
    library) cannot corrupt the stream; ignore SIGINT (a terminal Ctrl-C reaches the whole
    process group; the orchestrator decides when load stops and asks for it);
 2. read the config line, import locust, import the locustfile from its path (no sys.path
    changes), find the user class, apply the request timeout;
 3. in open mode, pace the user class on a shared arrival schedule (harness.load.pacing);
    start the users, send ``R`` (ready) with the monotonic time they started;
 4. record every request in an ``events.request`` listener and flush batches every 50 ms
    (with the write ids and read ids the requests' `context` carries);
 5. stop on the first of: a ``stop`` line on stdin, stdin EOF (the orchestrator died),
    SIGTERM, max_duration_s, Locust's runner stopping by itself; users get stop_grace_s to
    finish the task they are in (so a write in flight is recorded, not cut off);
 6. final flush, ``E`` (end) with totals, exit 0. Any failure before that: ``X`` + exit 1.
A kernel interval timer (SIGALRM, default action: terminate) backs up step 5 even if the event
loop is wedged by a CPU-bound locustfile.

Timestamps. `Sample.t` must be CLOCK_MONOTONIC (the orchestrator's clock). Locust's
`start_time` is epoch (time.time()), which NTP may step or slew. Instead the listener reads
time.monotonic() when the event fires and subtracts response_time (Locust measures it with
perf_counter, which is CLOCK_MONOTONIC on Linux: same clock, full float precision; only
Locust's *stats* round it). Error of t: it is late by the time between the end of the response
and the event firing: microseconds normally; with `catch_response=True` it also includes the
user's code inside the `with` block (latency itself is unaffected). It never drifts.
In open mode each sample also carries the monotonic time its request was due (the user's slot
on the arrival schedule), passed from the user to the listener in the request's context.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from harness.load import wire
from harness.load.config import REQUEST_TIMEOUT_ENV, WorkerConfig
from harness.load.pacing import Arrivals

EXIT_OK = 0
EXIT_ERROR = 1
DUE_KEY = "continuum_due_t"     # request context key: when an open-loop request was due


class WorkerFailure(Exception):
    def __init__(self, stage: str, message: str, type_: str = ""):
        super().__init__(message)
        self.stage = stage
        self.type = type_ or "WorkerFailure"


class Wire:
    """Frames out. Blocking writes until gevent is loaded, cooperative writes after."""

    def __init__(self, fd: int):
        self.fd = fd
        self.broken = False
        self._write: Callable[[int, Any], int] = os.write

    def go_cooperative(self) -> None:
        from gevent import os as gos

        gos.make_nonblocking(self.fd)
        self._write = gos.nb_write

    def send(self, kind: int, body: Any) -> None:
        if self.broken:
            return
        view = memoryview(wire.encode(kind, body))
        try:
            while view:
                n = self._write(self.fd, view)
                view = view[n:]
        except OSError:             # EPIPE: the orchestrator is gone; we stop on stdin EOF
            self.broken = True


def watch_stdin(buf: bytes, request_stop: Callable[[str], None]) -> None:
    """The orchestrator's channel, in a greenlet: a `stop` line or EOF (it died) asks to stop.
    `buf` holds what was read past the config line. Shared by the worker and the distributed
    master."""
    from gevent import os as gos

    gos.make_nonblocking(0)
    while True:
        while b"\n" in buf:
            cmd, _, buf = buf.partition(b"\n")
            if cmd.strip() == b"stop":
                request_stop("stop")
                return
        try:
            data = gos.nb_read(0, 4096)
        except OSError:
            data = b""
        if not data:
            request_stop("eof")
            return
        buf += data


def short_error(exc: BaseException) -> str:
    code = getattr(exc, "code", None)       # LocustBadStatusCode carries the status
    if isinstance(code, int) and not isinstance(code, bool):
        return f"HTTP {code}"
    # Keep a short message: "HTTP 503" or "ConnectionRefusedError" says more than the class
    # Locust wraps them in (CatchResponseError).
    name = type(exc).__name__
    message = str(exc).strip().splitlines()[0][:60] if str(exc).strip() else ""
    return f"{name}: {message}" if message and name in ("CatchResponseError", "RescheduleTask") else name


class Recorder:
    """The request listener (hot path: one append) and the batch encoder (flush greenlet)."""

    def __init__(self) -> None:
        self.pending: list[tuple] = []
        self.strings = wire.StringTable()
        self.requests = 0
        self.failures = 0
        self.writes = 0
        self.reads = 0
        self.user_errors = 0

    def on_request(self, response_time=0.0, name="", exception=None, context=None, **_kw) -> None:
        self.pending.append((time.monotonic(), response_time, name, exception, context))

    def on_user_error(self, **_kw) -> None:
        """A task raised (not a failed request): Locust logs the traceback to stderr."""
        self.user_errors += 1

    def take_batch(self) -> dict | None:
        pending = self.pending
        if not pending:
            return None
        self.pending = []
        intern = self.strings
        samples = []
        writes = []
        reads: list[tuple[str, float]] = []
        versions: list[tuple[float, int, int]] = []
        failures = 0
        for now, rt, name, exc, ctx in pending:
            lat = (rt or 0.0) / 1000.0
            t = now - lat
            if exc is None:
                rec = [t, lat, 1, intern(str(name)), 0]
            else:
                failures += 1
                rec = [t, lat, 0, intern(str(name)), intern(short_error(exc))]
            if ctx:
                due = ctx.get(DUE_KEY)
                if isinstance(due, float):
                    rec.append(min(due, t))     # due no later than sent (clock granularity)
            samples.append(rec)
            if ctx:
                wid = ctx.get("write_id")
                if wid is not None:
                    writes.append((str(wid), 0 if exc is not None else 1, t, now))
                ver = ctx.get("version")
                if ver is not None:     # the release that answered (context "version")
                    versions.append((t, intern(str(ver)), rec[2]))
                rid = ctx.get("read_id")
                if rid is not None and exc is None:      # only what a read actually returned
                    for one in rid if isinstance(rid, (list, tuple)) else (rid,):
                        reads.append((str(one), t))
        self.requests += len(samples)
        self.failures += failures
        self.writes += len(writes)
        self.reads += len(reads)
        batch = {"n": intern.take_new(), "s": samples, "w": writes}
        if reads:
            batch["r"] = reads
        if versions:
            batch["v"] = versions
        return batch


def load_locustfile(path_s: str):
    path = Path(path_s)
    if not path.is_absolute():
        raise WorkerFailure("locustfile", f"locustfile path must be absolute: {path_s}")
    if not path.is_file():
        raise WorkerFailure("locustfile", f"locustfile is not a file: {path}")
    mod_name = "continuum_locustfile"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise WorkerFailure("locustfile", f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module      # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        raise WorkerFailure("locustfile", f"importing {path} failed:\n{''.join(tb[-6:])}",
                            type(e).__name__) from None
    return module


def find_user_class(module, name: str):
    from locust import User

    cls = getattr(module, name, None)
    if cls is None:
        offered = sorted(k for k, v in vars(module).items()
                         if isinstance(v, type) and issubclass(v, User) and not getattr(v, "abstract", False))
        raise WorkerFailure("user-class",
                            f"no user class {name!r} in {module.__file__}; it defines: {', '.join(offered) or 'none'}",
                            "MissingUserClass")
    if not (isinstance(cls, type) and issubclass(cls, User)):
        raise WorkerFailure("user-class", f"{name!r} in {module.__file__} is not a locust User class",
                            "NotAUserClass")
    if cls.__dict__.get("abstract", False):
        raise WorkerFailure("user-class", f"{name!r} is abstract", "AbstractUserClass")
    return cls


def apply_request_timeout(cls, timeout_s: float) -> list[str]:
    """Give FastHttpUser/HttpUser classes the profile's timeout unless the class sets its own."""
    from locust import FastHttpUser, HttpUser

    applied = []
    if issubclass(cls, FastHttpUser):
        for attr in ("network_timeout", "connection_timeout"):
            own = any(attr in k.__dict__ for k in cls.__mro__ if k is not FastHttpUser and issubclass(k, FastHttpUser))
            if not own:
                setattr(cls, attr, timeout_s)
                applied.append(attr)
    elif issubclass(cls, HttpUser):
        # requests has no session-wide timeout (its default is to wait forever)
        from locust.clients import HttpSession

        original = HttpSession.request

        def request(self, method, url, *args, **kwargs):
            kwargs.setdefault("timeout", timeout_s)
            return original(self, method, url, *args, **kwargs)

        HttpSession.request = request
        applied.append("HttpSession.request(timeout=)")
    return applied


def paced(cls, arrivals: Arrivals):
    """The profile's user class, its requests due on `arrivals` (open mode).

    Each user takes the next due time whenever it is free (Locust's wait_time hook), sleeps
    until then, and runs a task of the profile; every request of that task carries the due time
    in its context (a retry inside the task too: the user has been waiting since then). The
    first task waits for its slot as well (Locust runs it as soon as the user starts)."""

    def wait_time(self) -> float:
        due = arrivals.take()
        self._continuum_due_t = due
        return max(0.0, due - time.monotonic())

    def on_start(self) -> None:
        cls.on_start(self)
        self.wait()

    def context(self) -> dict:
        ctx = cls.context(self)
        due = getattr(self, "_continuum_due_t", None)
        return {**ctx, DUE_KEY: due} if due is not None else ctx

    return type(cls.__name__, (cls,), {"wait_time": wait_time, "on_start": on_start, "context": context,
                                       "__module__": cls.__module__, "abstract": False})


def read_config_line(fd: int) -> tuple[bytes, bytes]:
    """Read up to the first newline, unbuffered; return (line, the bytes read past it)."""
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(fd, 65536)
        if not chunk:
            raise WorkerFailure("config", "stdin closed before a config line arrived", "EOFError")
        buf += chunk
        if len(buf) > 1024 * 1024:
            raise WorkerFailure("config", "config line longer than 1 MiB")
    line, _, rest = buf.partition(b"\n")
    return line, rest


def read_config() -> tuple[WorkerConfig, bytes]:
    """The config line from stdin, validated, applied to the environment; and what followed it."""
    line, rest = read_config_line(0)
    try:
        cfg = WorkerConfig.from_line(line)
    except ValueError as e:
        raise WorkerFailure("config", str(e), "ValueError") from None
    os.environ.update(cfg.env)
    os.environ[REQUEST_TIMEOUT_ENV] = repr(float(cfg.request_timeout_s))
    return cfg, rest


def run(out: Wire) -> int:
    cfg, rest = read_config()
    if cfg.distributed:
        raise WorkerFailure("config", "a config with several workers is for python -m harness.load.distributed")

    try:
        import locust  # first: it monkey-patches the process with gevent

        import gevent
        import gevent.event

        from locust.env import Environment
        from locust.runners import STATE_STOPPED, STATE_CLEANUP
    except Exception as e:
        raise WorkerFailure("import-locust", f"importing locust failed: {e}", type(e).__name__) from None
    out.go_cooperative()
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    module = load_locustfile(cfg.locustfile)
    cls = find_user_class(module, cfg.user_class)
    apply_request_timeout(cls, cfg.request_timeout_s)
    if cfg.mode == "open":
        cls = paced(cls, Arrivals(cfg.rate))

    try:
        env = Environment(user_classes=[cls], host=cfg.host, stop_timeout=cfg.stop_grace_s or None)
        runner = env.create_local_runner()
    except Exception as e:
        raise WorkerFailure("environment", f"building the Locust environment failed: {e}",
                            type(e).__name__) from None
    rec = Recorder()
    env.events.request.add_listener(rec.on_request)
    env.events.user_error.add_listener(rec.on_user_error)

    stop_event = gevent.event.Event()
    reason: list[str] = []

    def request_stop(why: str) -> None:
        if not reason:
            reason.append(why)
        stop_event.set()

    flush_done = gevent.event.Event()

    def flusher() -> None:
        # ends only between frames (never killed: a kill inside nb_write would cut a frame)
        while not flush_done.wait(cfg.flush_interval_s):
            batch = rec.take_batch() or {"n": [], "s": [], "w": []}   # empty: a heartbeat
            batch["u"] = runner.user_count
            out.send(wire.BATCH, batch)
            if runner.state in (STATE_STOPPED,) and not stop_event.is_set():
                request_stop("runner_stopped")

    # Hard cap: if the loop never gets to stop (a wedged locustfile), the kernel ends us.
    signal.setitimer(signal.ITIMER_REAL, cfg.max_duration_s + cfg.stop_grace_s + cfg.hard_cap_slack_s)
    gevent.signal_handler(signal.SIGTERM, request_stop, "sigterm")

    runner.start(cfg.users, cfg.spawn_rate, wait=False)
    t_start = time.monotonic()
    out.send(wire.READY, {"pid": os.getpid(), "t_start": t_start, "users": cfg.users,
                          "spawn_rate": cfg.spawn_rate, "user_class": cfg.user_class,
                          "mode": cfg.mode, "rate": cfg.rate, "locust": locust.__version__})
    flush_g = gevent.spawn(flusher)
    stdin_g = gevent.spawn(watch_stdin, rest, request_stop)
    cap_g = gevent.spawn_later(cfg.max_duration_s, request_stop, "max_duration")

    stop_event.wait()
    t_quit = time.monotonic()
    if runner.state not in (STATE_STOPPED, STATE_CLEANUP):
        runner.quit()
    else:
        runner.greenlet.kill(block=True)
    t_stop = time.monotonic()
    flush_done.set()
    flush_g.join()
    cap_g.kill(block=False)
    stdin_g.kill(block=False)
    batch = rec.take_batch() or {"n": [], "s": [], "w": []}
    batch["u"] = runner.user_count
    out.send(wire.BATCH, batch)
    out.send(wire.END, {"reason": reason[0], "requests": rec.requests, "failures": rec.failures,
                        "writes": rec.writes, "reads": rec.reads, "user_errors": rec.user_errors,
                        "t_stop": t_stop,
                        "grace_exceeded": bool(cfg.stop_grace_s) and t_stop - t_quit >= cfg.stop_grace_s})
    signal.setitimer(signal.ITIMER_REAL, 0)
    return EXIT_OK


def main(run: Callable[[Wire], int] = run) -> int:
    """The process around `run`: the frame stream on the real stdout, errors as ``X`` frames.
    harness.load.distributed runs its master through this too."""
    sys.stdout.flush()
    wire_fd = os.dup(1)
    os.dup2(2, 1)                       # print() now lands on stderr, never in the frames
    os.set_inheritable(wire_fd, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    out = Wire(wire_fd)
    try:
        return run(out)
    except WorkerFailure as e:
        out.send(wire.ERROR, {"type": e.type, "message": str(e), "stage": e.stage})
        print(f"continuum load worker: {e.stage}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BaseException as e:     # noqa: BLE001 - report anything, then fail
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        out.send(wire.ERROR, {"type": type(e).__name__, "message": f"{e}\n{tb[-4000:]}", "stage": "run"})
        print(tb, file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)      # do not wait for stray greenlets/threads a locustfile may have left

"""The orchestrator's side of load generation. Never imports locust (see harness.load.worker).

    with LoadGenerator(locustfile, "ledger", "http://127.0.0.1:8080", users=20, spawn_rate=20,
                       request_timeout_s=2.0, max_duration_s=120) as load:
        t0 = load.t_start
        while ...:
            for s in load.poll(): ...
        summary = load.stop()
    load.samples(), load.writes(), load.reads()

The worker is a child in the orchestrator's process group (no new session), so a signal to the
group reaches it; it ignores SIGINT and stops when asked, when its stdin reaches EOF (this
process died, even by SIGKILL), at max_duration_s, or at a kernel timer behind all of these.

With workers > 1 (or remote_workers) that process is a Locust master and the requests come
from its workers (harness.load.distributed): each batch names its worker, whose clock offset
is subtracted from its times, and harness.load.ledger checks that every worker's batches
arrived in order, none missing or doubled, and that its end totals match. Any difference, a
worker that dies, or workers that do not all join in time is a LoadError (the run: ERROR).
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import harness
from harness.errors import LoadError
from harness.load import wire
from harness.load.config import WorkerConfig
from harness.load.ledger import Ledger, LedgerError
from harness.model.record import ReadRecord, Sample, VersionRecord, WriteRecord

STDERR_TAIL_LINES = 40


@dataclass(frozen=True)
class LoadSummary:
    """The worker's end frame."""

    reason: str             # stop | eof | sigterm | max_duration | runner_stopped
    requests: int
    failures: int
    writes: int
    t_stop: float           # monotonic: users stopped
    grace_exceeded: bool    # some users were still in a task after stop_grace_s and were killed
    user_errors: int = 0    # tasks that raised (not failed requests); tracebacks are on stderr
    reads: int = 0          # ids returned by successful reads (context read_id)


@dataclass(frozen=True)
class JoinedWorker:
    """A load worker of a distributed run, and how its clock was put on ours."""

    src: int
    name: str
    pid: int
    host: str
    offset_s: float         # its clock − the master's, measured by ping/pong (clocks.py)
    rtt_s: float            # the round trip that measurement came from (error <= rtt / 2)
    same_clock: bool        # same kernel: the correction applied is exactly 0
    applied_s: float        # subtracted from its times


class LoadGenerator:
    """Runs one Locust worker process and collects its samples, write and read records."""

    def __init__(
        self,
        locustfile: Path,
        user_class: str,
        host: str,
        users: int,
        spawn_rate: float,
        request_timeout_s: float,
        max_duration_s: float,
        env: Mapping[str, str] = MappingProxyType({}),
        *,
        stop_grace_s: float | None = None,
        ready_timeout_s: float = 30.0,
        hard_cap_slack_s: float = 10.0,
        python: str | None = None,
        mode: str = "closed",
        rate: float = 0.0,
        workers: int = 1,
        remote_workers: int = 0,
        master_bind: str = "127.0.0.1:0",
        join_timeout_s: float = 30.0,
        keep_samples: bool = True,
    ):
        path = Path(locustfile).resolve()
        # False: samples are handed out by poll() and forgotten (a run streams them into its
        # bounded store, harness.measure.store); samples() then holds only those not polled.
        self._keep = keep_samples
        if stop_grace_s is None:
            stop_grace_s = 2 * request_timeout_s + 1.0
        self._config = WorkerConfig(
            locustfile=str(path), user_class=user_class, host=host, users=users,
            spawn_rate=float(spawn_rate), request_timeout_s=float(request_timeout_s),
            max_duration_s=float(max_duration_s), stop_grace_s=float(stop_grace_s), env=dict(env),
            hard_cap_slack_s=float(hard_cap_slack_s), mode=mode, rate=float(rate),
            workers=workers, remote_workers=remote_workers, master_bind=master_bind,
            join_timeout_s=float(join_timeout_s),
        )
        try:
            self._config.validate()
        except ValueError as e:
            raise LoadError(str(e)) from None
        if not path.is_file():
            raise LoadError(f"locustfile is not a file: {path}")
        # workers joining and their clocks being measured come before "ready"
        self._ready_timeout_s = ready_timeout_s + (self._config.join_timeout_s if self._config.distributed else 0)
        self._python = python or sys.executable

        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._samples: list[Sample] = []
        # keep_samples=False: which load process sent the samples not yet polled, as runs
        # [process, count] in arrival order (one entry per batch, nothing per sample)
        self._srcs: list[list[int]] = []
        self._writes: list[WriteRecord] = []
        self._reads: list[ReadRecord] = []
        self._versions: list[VersionRecord] = []
        self._polled = 0
        self._users: int | None = None
        self._ready: dict | None = None
        self._end: LoadSummary | None = None
        self._error: str | None = None          # from an X frame or a broken stream
        self._stream_closed = False
        self._stop_requested = False
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._tail_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._joined: list[JoinedWorker] = []
        self._users_by_src: dict[int, int] = {}
        self._ledger = Ledger()
        self._offsets: dict[int, float] = {}

    # ─────────────────────────── life ───────────────────────────

    def __enter__(self) -> LoadGenerator:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.stop()
        except LoadError:
            if exc_type is None:
                raise
            # an exception is already on its way out; the worker is dead either way

    def start(self) -> LoadGenerator:
        """Spawn the worker and wait until its users are started. LoadError on failure."""
        if self._proc is not None:
            raise LoadError("LoadGenerator already started")
        env = dict(os.environ)
        root = str(Path(harness.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self._proc = subprocess.Popen(
                # several workers: a Locust master in harness.load.distributed, same pipes
                [self._python, "-m", "harness.load.distributed" if self._config.distributed else "harness.load.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, close_fds=True, start_new_session=False,
            )
        except OSError as e:
            raise LoadError(f"cannot start the load worker ({self._python}): {e}") from None
        try:
            for target, name in ((self._read_frames, "frames"), (self._read_stderr, "stderr")):
                t = threading.Thread(target=target, name=f"continuum-load-{name}-{self._proc.pid}", daemon=True)
                t.start()
                self._threads.append(t)
            self._send(self._config.to_line())
            self._wait_ready()
        except BaseException:
            self._kill()
            raise
        return self

    def stop(self, timeout: float | None = None) -> LoadSummary | None:
        """Ask the worker to stop, wait for its end frame and exit, kill it if it overstays.

        timeout: how long to wait for the exit; default stop_grace_s + 5 s (never below 10 s),
        since users get stop_grace_s to finish the task they are in.
        Returns the end summary (None if never started). Raises LoadError if the worker failed
        or had to be killed (it is dead either way). Safe to call again.
        """
        proc = self._proc
        if proc is None:
            return None
        if timeout is None:
            timeout = max(10.0, self._config.stop_grace_s + 5.0)
        self._stop_requested = True
        if proc.poll() is None:
            self._send(b"stop\n")
        self._close_stdin()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self._join_readers(2.0)
            raise LoadError(f"load worker did not stop within {timeout:g} s; killed it{self._tail()}") from None
        self._join_readers(timeout)
        return self._check_finished()

    def _check_finished(self) -> LoadSummary:
        proc = self._proc
        assert proc is not None
        with self._lock:
            end, err = self._end, self._error
        if err is not None:
            raise LoadError(f"load worker failed: {err}{self._tail()}")
        if proc.returncode != 0:
            raise LoadError(f"load worker exited with {_exit_text(proc.returncode)}{self._tail()}")
        if end is None:
            raise LoadError(f"load worker exited without its end frame{self._tail()}")
        return end

    # ─────────────────────────── results ───────────────────────────

    def poll(self) -> list[Sample]:
        """Samples received since the last poll; never blocks.

        Raises LoadError once everything was handed out and the worker has failed (error
        frame, crash, or exit without being asked and without an end frame).
        """
        with self._lock:
            new = self._take_locked()
            failed = self._failure_locked()
        if not new and failed:
            raise LoadError(failed + self._tail())
        return new

    def poll_final(self) -> list[Sample]:
        """Samples not yet handed out, without raising: for the cleanup path, where the worker's
        failure (if any) is already on its way out."""
        with self._lock:
            return self._take_locked()

    def poll_sources(self, final: bool = False) -> list[tuple[int, list[Sample]]]:
        """As poll() (as poll_final() when `final`), the samples grouped by the load process
        that sent them (its worker number; 0 with one process), in arrival order: each
        process's latency is kept in its own histograms and merged exactly at the end
        (harness.measure.store)."""
        with self._lock:
            runs = self._srcs if not self._keep else [[0, len(self._samples) - self._polled]]
            new = self._take_locked()
            failed = None if final else self._failure_locked()
        if not new and failed:
            raise LoadError(failed + self._tail())
        out: list[tuple[int, list[Sample]]] = []
        start = 0
        for src, n in runs:
            if n:
                out.append((src, new[start:start + n]))
                start += n
        return out

    def _came_from(self, src: int, n: int) -> None:
        """Under the lock: `n` samples just appended were sent by load process `src`."""
        if self._keep or not n:
            return
        if self._srcs and self._srcs[-1][0] == src:
            self._srcs[-1][1] += n
        else:
            self._srcs.append([src, n])

    def _take_locked(self) -> list[Sample]:
        if not self._keep:
            new, self._samples, self._srcs = self._samples, [], []
            return new
        new = self._samples[self._polled:]
        self._polled = len(self._samples)
        return new

    def samples(self) -> tuple[Sample, ...]:
        with self._lock:
            return tuple(self._samples)

    def writes(self) -> tuple[WriteRecord, ...]:
        with self._lock:
            return tuple(self._writes)

    def reads(self) -> tuple[ReadRecord, ...]:
        """Ids the load read back while it ran (a consumer's deliveries), in arrival order."""
        with self._lock:
            return tuple(self._reads)

    def versions(self) -> tuple[VersionRecord, ...]:
        """Which release answered each request that said (context "version"), in arrival order."""
        with self._lock:
            return tuple(self._versions)

    @property
    def t_start(self) -> float | None:
        """Monotonic time the worker started its users (None before start)."""
        return self._ready["t_start"] if self._ready else None

    def users_running(self) -> int | None:
        """Users the worker reported running at its last flush (None before the first)."""
        with self._lock:
            return self._users

    def workers_joined(self) -> tuple[JoinedWorker, ...]:
        """The load workers of a distributed run, with their clock offsets (empty with one)."""
        with self._lock:
            return tuple(self._joined)

    def requests_by_worker(self) -> dict[str, int]:
        """Distributed load: requests received from each worker, by its name (empty with one)."""
        with self._lock:
            return self._ledger.by_name()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def summary(self) -> LoadSummary | None:
        """The end frame, once the worker has stopped (by request or by itself)."""
        with self._lock:
            return self._end

    def running(self) -> bool:
        """The worker process is alive and has not sent its end frame."""
        return self._proc is not None and self._proc.poll() is None and self.summary is None

    # ─────────────────────────── internals ───────────────────────────

    def _failure_locked(self) -> str | None:
        if self._error is not None:
            return f"load worker failed: {self._error}"
        if self._stream_closed and self._end is None and not self._stop_requested:
            rc = self._proc.poll() if self._proc else None
            return f"load worker ended unexpectedly ({_exit_text(rc)})"
        return None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._ready_timeout_s
        with self._cond:
            while self._ready is None and self._error is None and not self._stream_closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            ready, err, closed = self._ready, self._error, self._stream_closed
        if ready is not None:
            return
        self._kill()
        self._join_readers(2.0)
        if err is not None:
            raise LoadError(f"load worker failed to start: {err}{self._tail()}")
        if closed:
            raise LoadError(f"load worker exited before it was ready "
                            f"({_exit_text(self._proc.poll() if self._proc else None)}){self._tail()}")
        raise LoadError(f"load worker not ready within {self._ready_timeout_s:g} s{self._tail()}")

    def _read_frames(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        decoder = wire.Decoder()
        strings = wire.StringLookup()
        per_src: dict[int, wire.StringLookup] = {}      # distributed: one table per worker
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    decoder.close()
                    break
                for frame in decoder.feed(chunk):
                    src = frame.body.get("src") if isinstance(frame.body, dict) else None
                    try:
                        if src is None:
                            self._apply(frame, strings)
                        else:
                            self._apply_worker(frame, per_src.setdefault(int(src), wire.StringLookup()), int(src))
                    except LedgerError as e:
                        # requests lost or doubled: the run is an ERROR; keep draining so the
                        # master is never blocked on a full pipe
                        with self._cond:
                            if self._error is None:
                                self._error = f"load workers: {e}"
                            self._cond.notify_all()
        except (wire.FrameError, ValueError, TypeError, IndexError, KeyError) as e:
            with self._cond:
                if self._error is None:
                    self._error = f"corrupt frame stream: {e}"
        except OSError as e:
            with self._cond:
                if self._error is None and self._end is None:
                    self._error = f"reading the frame stream failed: {e}"
        finally:
            with self._cond:
                self._stream_closed = True
                self._cond.notify_all()

    def _apply(self, frame: wire.Frame, strings: wire.StringLookup) -> None:
        body = frame.body
        if frame.kind == wire.BATCH:
            strings.extend(body["n"])
            tab = strings.strings
            samples = [Sample(r[0], r[1], bool(r[2]), tab[r[3]], tab[r[4]], r[5] if len(r) > 5 else None)
                       for r in body["s"]]
            # [id, ok, start, end]; the end (when the answer came) is absent from older workers.
            writes = [WriteRecord(w[0], "acked" if w[1] else "unknown", w[2], w[3] if len(w) > 3 else None)
                      for w in body["w"]]
            reads = [ReadRecord(rid, t) for rid, t in body.get("r", ())]
            versions = [VersionRecord(t, tab[v], bool(ok)) for t, v, ok in body.get("v", ())]
            with self._lock:
                self._versions.extend(versions)
                self._samples.extend(samples)
                self._came_from(0, len(samples))
                self._writes.extend(writes)
                self._reads.extend(reads)
                self._users = body.get("u", self._users)
        elif frame.kind == wire.READY:
            with self._cond:
                self._ready = body
                self._cond.notify_all()
        elif frame.kind == wire.END:
            if self._config.distributed:
                with self._lock:
                    self._ledger.finish(self._config.total_workers)
                if int(body["requests"]) != self._ledger.requests:
                    raise LedgerError(f"the master counted {body['requests']} requests, "
                                      f"{self._ledger.requests} arrived")
            summary = LoadSummary(
                reason=str(body["reason"]), requests=int(body["requests"]), failures=int(body["failures"]),
                writes=int(body["writes"]), t_stop=float(body["t_stop"]),
                grace_exceeded=bool(body.get("grace_exceeded", False)),
                user_errors=int(body.get("user_errors", 0)), reads=int(body.get("reads", 0)),
            )
            with self._cond:
                self._end = summary
                self._cond.notify_all()
        elif frame.kind == wire.ERROR:
            with self._cond:
                self._error = f"[{body.get('stage')}] {body.get('type')}: {body.get('message')}"
                self._cond.notify_all()

    def _apply_worker(self, frame: wire.Frame, strings: wire.StringLookup, src: int) -> None:
        """A frame from one worker of a distributed run: its batch numbers checked, its times
        put on our clock."""
        body = frame.body
        if frame.kind == wire.BATCH:
            off = self._offsets.get(src)
            if off is None:
                raise LedgerError(f"batch from worker {src}, which never joined")
            strings.extend(body["n"])
            tab = strings.strings
            samples = [Sample(r[0] - off, r[1], bool(r[2]), tab[r[3]], tab[r[4]],
                              r[5] - off if len(r) > 5 else None) for r in body["s"]]
            # [id, ok, start, end] as in _apply (a worker sends the end too; unpacking three
            # fields made every distributed run with writes a corrupt stream)
            writes = [WriteRecord(w[0], "acked" if w[1] else "unknown", w[2] - off,
                                  w[3] - off if len(w) > 3 and w[3] is not None else None) for w in body["w"]]
            reads = [ReadRecord(rid, t - off) for rid, t in body.get("r", ())]
            versions = [VersionRecord(t - off, tab[v], bool(ok)) for t, v, ok in body.get("v", ())]
            with self._lock:
                self._ledger.batch(src, int(body["q"]), len(samples), len(writes))   # raises: nothing added
                self._versions.extend(versions)
                self._samples.extend(samples)
                self._came_from(src, len(samples))
                self._writes.extend(writes)
                self._reads.extend(reads)
                if "u" in body:
                    self._users_by_src[src] = int(body["u"])
                    self._users = sum(self._users_by_src.values())
        elif frame.kind == wire.JOINED:
            w = JoinedWorker(src=src, name=str(body["name"]), pid=int(body["pid"]), host=str(body["host"]),
                             offset_s=float(body["offset_s"]), rtt_s=float(body["rtt_s"]),
                             same_clock=bool(body["same_clock"]), applied_s=float(body["applied_s"]))
            with self._lock:
                self._ledger.join(src, w.name)
                self._offsets[src] = w.applied_s
                self._joined.append(w)
        elif frame.kind == wire.WORKER_END:
            with self._lock:
                self._ledger.end(src, int(body["batches"]), int(body["requests"]), int(body["writes"]))
        else:
            raise wire.FrameError(f"frame {frame.letter!r} does not come from a worker")

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in self._proc.stderr:          # drained always, so the worker never blocks on it
            line = raw.decode("utf-8", "replace").rstrip()
            with self._tail_lock:
                self._stderr_tail.append(line)

    def _send(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.closed:
            return
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass                # the worker is gone; the exit status tells the story

    def _close_stdin(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._stop_requested = True
        self._close_stdin()
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass

    def _join_readers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for f in (self._proc.stdout, self._proc.stderr) if self._proc else ():
            if f is not None and not any(t.is_alive() for t in self._threads):
                f.close()

    def _tail(self) -> str:
        with self._tail_lock:
            lines = list(self._stderr_tail)
        if not lines:
            return ""
        return "\n--- worker stderr (last lines) ---\n" + "\n".join(lines[-STDERR_TAIL_LINES:])


def _exit_text(rc: int | None) -> str:
    if rc is None:
        return "still running"
    if rc < 0:
        return f"signal {-rc}"
    return f"exit status {rc}"

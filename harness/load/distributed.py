"""Load from several processes or machines: a Locust master and its workers.

    python -m harness.load.distributed   no arguments: the master (config on stdin, frames on
                                         stdout, as harness.load.worker; the orchestrator runs
                                         it when workers + remote_workers > 1)
    python -m harness.load.distributed --master HOST:PORT --locustfile F --user-class C
                                         a worker started by hand, e.g. on another machine
                                         (`continuum load-worker`, docs/scaling.md); the
                                         master's local workers are forks of it (LocalWorker)

Like harness.load.worker, this module imports locust (gevent) and runs only in those processes.

Locust's own protocol (ZeroMQ, msgpack) carries everything: Locust's master splits users and
spawn rate over its workers as it always does, and our custom messages ride the same
connections. Why the samples go through the master rather than a pipe from each worker: a
worker on another machine has no pipe to the orchestrator, and one path for local and remote
workers is one path to get right. The master forwards each worker's batch untouched but for
its worker number, so its cost is a decode and an encode per batch, not per request.

The master's side, in order:
 1. import locust and the locustfile, fork `workers` local workers (PR_SET_PDEATHSIG and a
    stdin pipe: they die with the master, and the master stops on the orchestrator's EOF as
    the single worker does); listen on master_bind (127.0.0.1, a free port, unless told
    otherwise) and tell the local workers where; wait for
    `workers + remote_workers` to say hello within join_timeout_s, else an error before any
    load (the orchestrator's fault timeline has not started);
 2. per worker, five ping/pong round trips (harness.load.clocks) and a ``J`` frame;
 3. send each worker its config: the profile's settings, its number `index` of N and the
    common origin of the open-loop schedule (it takes every N-th slot, harness.load.pacing);
    then start Locust's spawn (users split by Locust) and send ``R``;
 4. forward batches (``B`` with "src"; each worker numbers its batches, harness.load.ledger
    checks them on the orchestrator's side); a local worker process that exits, or any worker
    that sends nothing for HEARTBEAT_S or that Locust marks missing, is an ``X`` naming it;
 5. on stop: ask every worker to stop its users (stop_grace_s to finish their task), forward
    each one's end (``W``), send ``E`` with the totals, quit Locust, reap the local workers.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from harness.load import wire
from harness.load.clocks import Offset, boot_id, estimate
from harness.load.config import REQUEST_TIMEOUT_ENV, WorkerConfig, split_address
from harness.load.pacing import Arrivals
from harness.load import worker as single
from harness.load.worker import (EXIT_ERROR, EXIT_OK, Recorder, watch_stdin, Wire, WorkerFailure, apply_request_timeout,
                                 find_user_class, load_locustfile, paced, read_config)

HELLO = "continuum_hello"      # worker → master {pid, host, boot_id}
PING = "continuum_ping"        # master → worker {t0}
PONG = "continuum_pong"        # worker → master {t0, tw}
CONFIG = "continuum_config"    # master → worker {config, index, stride, origin, applied_s}
BATCH = "continuum_batch"      # worker → master: a wire batch plus "q"
STOP = "continuum_stop"        # master → worker
END = "continuum_end"          # worker → master {batches, requests, ...}

PING_ROUNDS = 5
PING_TIMEOUT_S = 2.0
HEARTBEAT_S = 5.0              # a worker silent this long (it flushes every 50 ms) is dead or cut off
PR_SET_PDEATHSIG = 1


class LocalWorker:
    """A worker process of this machine: a fork of the master once locust and the locustfile
    are imported (so a worker costs no import: seconds each on a busy machine), before any
    ZeroMQ socket or greenlet exists (gevent's fork re-initialises its hub in the child).

    The child gets PR_SET_PDEATHSIG (killed when the master dies, however it dies), a pipe from
    the master as its stdin (the master's address arrives on it; EOF: the master is gone), and
    neither the frame stream nor the orchestrator's pipe."""

    def __init__(self, child: Callable[[], int], close_in_child: list[int]):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = EXIT_ERROR
            try:
                ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                if os.getppid() == 1:
                    os._exit(EXIT_ERROR)                # the master died before prctl
                os.dup2(r, 0)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)                     # stderr stays: the orchestrator's tail
                for fd in (r, w, devnull, *close_in_child):
                    os.close(fd)
                code = child()
            except BaseException:       # noqa: BLE001 - a child never returns into the master's code
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        os.close(r)
        self.pid = pid
        self._stdin = w
        self.returncode: int | None = None

    def tell(self, line: str) -> None:
        try:
            os.write(self._stdin, line.encode() + b"\n")
        except OSError:
            pass                        # it is gone; poll() says how

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close_stdin(self) -> None:
        try:
            os.close(self._stdin)
        except OSError:
            pass


def _exit_text(rc: int | None) -> str:
    if rc is None:
        return "still running"
    return f"signal {-rc}" if rc < 0 else f"exit status {rc}"


@dataclass
class Node:
    id: str                     # Locust's client id
    src: int
    pid: int
    host: str
    boot: str
    exchanges: list[tuple[float, float, float]] = field(default_factory=list)
    offset: Offset | None = None
    last_seen: float = 0.0
    end: dict | None = None

    @property
    def name(self) -> str:
        return f"load worker {self.src} (pid {self.pid} on {self.host})"


# ─────────────────────────────── master ───────────────────────────────

def master_main(out: Wire) -> int:
    cfg, rest = read_config()
    if not cfg.distributed:
        raise WorkerFailure("config", "a config with one worker is for python -m harness.load.worker")
    return run_master(out, cfg, rest)


def run_master(out: Wire, cfg: WorkerConfig, rest: bytes) -> int:
    try:
        import locust  # noqa: F401 - first: it monkey-patches the process with gevent
    except Exception as e:
        raise WorkerFailure("import-locust", f"importing locust failed: {e}", type(e).__name__) from None
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module = load_locustfile(cfg.locustfile)
    cls = find_user_class(module, cfg.user_class)
    procs: list[LocalWorker] = []
    try:
        for _ in range(cfg.workers):
            procs.append(LocalWorker(lambda: _work("-", cls, stdin_eof=True),
                                     close_in_child=[out.fd] + [x._stdin for x in procs]))
    except OSError as e:
        for p in procs:
            p.kill()
        raise WorkerFailure("spawn", f"cannot start a local load worker: {e}", type(e).__name__) from None
    try:
        return _master(out, cfg, rest, procs, cls)
    finally:
        for p in procs:
            p.close_stdin()             # EOF: a worker not yet told where the master is exits
        deadline = time.monotonic() + 5.0
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)            # gevent's sleep once locust is imported
        for p in procs:
            p.kill()
            if p.returncode is None:
                os.waitpid(p.pid, 0)


def _master(out: Wire, cfg: WorkerConfig, rest: bytes, procs: list[LocalWorker], cls: type) -> int:
    import gevent
    import gevent.event
    import locust
    from locust.env import Environment

    out.go_cooperative()
    bind_host, bind_port = split_address(cfg.master_bind)
    try:
        env = Environment(user_classes=[cls], host=cfg.host, stop_timeout=cfg.stop_grace_s or None)
        runner = env.create_master_runner(bind_host, bind_port)
    except Exception as e:
        raise WorkerFailure("master", f"the Locust master cannot listen on {cfg.master_bind}: {e}",
                            type(e).__name__) from None
    port = runner.server.port
    address = f"{bind_host}:{port}"
    n = cfg.total_workers
    own_boot = boot_id()

    nodes: dict[str, Node] = {}
    synced: list[Node] = []
    joined = gevent.event.Event()
    ended = gevent.event.Event()
    stop_event = gevent.event.Event()
    reason: list[str] = []
    failure: list[WorkerFailure] = []
    pongs: dict[str, gevent.event.Event] = {}
    started = [False]

    def request_stop(why: str) -> None:
        if not reason:
            reason.append(why)
        stop_event.set()

    def fail(stage: str, message: str) -> None:
        if not failure:
            failure.append(WorkerFailure(stage, message, "LoadWorkerLost" if stage == "worker" else "LoadJoin"))
        request_stop("error")

    def sync(node: Node) -> None:
        ev = pongs[node.id]
        for _ in range(PING_ROUNDS):
            ev.clear()
            runner.send_message(PING, {"t0": time.monotonic()}, client_id=node.id)
            if not ev.wait(PING_TIMEOUT_S):
                fail("join", f"{node.name} did not answer a clock ping within {PING_TIMEOUT_S:g} s")
                return
        node.offset = estimate(node.exchanges, same_clock=bool(own_boot) and node.boot == own_boot)
        o = node.offset
        out.send(wire.JOINED, {"src": node.src, "name": node.name, "pid": node.pid, "host": node.host,
                               "offset_s": o.offset_s, "rtt_s": o.rtt_s, "same_clock": o.same_clock,
                               "applied_s": o.applied_s})
        synced.append(node)
        if len(synced) == n:
            joined.set()

    def on_hello(environment=None, msg=None, **_kw) -> None:
        d = msg.data or {}
        if msg.node_id in nodes or len(nodes) >= n:
            print(f"continuum master: ignoring an extra load worker {msg.node_id} "
                  f"(pid {d.get('pid')} on {d.get('host')}): {n} expected", file=sys.stderr)
            return
        node = Node(msg.node_id, len(nodes), int(d.get("pid", 0)), str(d.get("host", "?")), str(d.get("boot_id", "")),
                    last_seen=time.monotonic())
        nodes[msg.node_id] = node
        pongs[msg.node_id] = gevent.event.Event()
        gevent.spawn(sync, node)

    def on_pong(environment=None, msg=None, **_kw) -> None:
        node = nodes.get(msg.node_id)
        if node is not None:
            node.exchanges.append((float(msg.data["t0"]), float(msg.data["tw"]), time.monotonic()))
            pongs[node.id].set()

    def on_batch(environment=None, msg=None, **_kw) -> None:
        node = nodes.get(msg.node_id)
        if node is None:
            return
        node.last_seen = time.monotonic()
        body = msg.data
        body["src"] = node.src
        out.send(wire.BATCH, body)

    def on_end(environment=None, msg=None, **_kw) -> None:
        node = nodes.get(msg.node_id)
        if node is None or node.end is not None:
            return
        node.end = dict(msg.data)
        out.send(wire.WORKER_END, {**node.end, "src": node.src})
        if sum(1 for x in nodes.values() if x.end is not None) == n:
            ended.set()

    for name, fn in ((HELLO, on_hello), (PONG, on_pong), (BATCH, on_batch), (END, on_end)):
        runner.register_message(name, fn)

    def watchdog() -> None:
        by_pid = {}
        while not stop_event.is_set():
            for x in nodes.values():
                by_pid[x.pid] = x
            for p in procs:
                rc = p.poll()
                node = by_pid.get(p.pid)
                if rc is not None and (node is None or node.end is None):
                    what = node.name if node else f"local load worker pid {p.pid}"
                    when = "mid-run" if started[0] else "before the load started"
                    fail("worker", f"{what} exited {when} ({_exit_text(rc)}); its requests since its "
                                   "last batch are lost, so this run's counts are not complete")
                    return
            if started[0]:
                now = time.monotonic()
                for x in synced:
                    client = runner.clients.get(x.id)
                    missing = client is not None and client.state == "missing"
                    if x.end is None and (missing or now - x.last_seen > HEARTBEAT_S):
                        fail("worker", f"{x.name} stopped reporting ({'missing to Locust' if missing else f'nothing for {now - x.last_seen:.1f} s'}); "
                                       "its requests are unaccounted for")
                        return
            gevent.sleep(0.1)

    connect_host = "127.0.0.1" if bind_host in ("*", "0.0.0.0", "::", "localhost", "127.0.0.1") else bind_host

    signal.setitimer(signal.ITIMER_REAL, cfg.join_timeout_s + cfg.max_duration_s + cfg.stop_grace_s
                     + cfg.hard_cap_slack_s)
    gevent.signal_handler(signal.SIGTERM, request_stop, "sigterm")
    stdin_g = gevent.spawn(watch_stdin, rest, request_stop)
    dog_g = gevent.spawn(watchdog)
    try:
        for p in procs:
            p.tell(f"{connect_host}:{port}")
        if cfg.remote_workers:
            print(f"continuum master: listening on {address}; waiting for {cfg.remote_workers} remote "
                  f"load worker(s): continuum load-worker --master HOST:{port} ...", file=sys.stderr)
        gevent.wait([joined, stop_event], timeout=cfg.join_timeout_s, count=1)
        if failure:
            raise failure[0]
        if not joined.is_set():
            if stop_event.is_set():
                raise WorkerFailure("join", f"stopped ({reason[0]}) while load workers joined")
            raise WorkerFailure("join", f"{len(synced)} of {n} load workers joined the master at {address} "
                                        f"within {cfg.join_timeout_s:g} s", "LoadJoinTimeout")

        t_start = time.monotonic()
        wcfg = asdict(cfg)
        for node in synced:
            runner.send_message(CONFIG, {"config": wcfg, "index": node.src, "stride": n, "origin": t_start,
                                         "applied_s": node.offset.applied_s if node.offset else 0.0},
                                client_id=node.id)
        for node in synced:
            node.last_seen = time.monotonic()
        started[0] = True
        runner.start(cfg.users, cfg.spawn_rate, wait=False)
        out.send(wire.READY, {"pid": os.getpid(), "t_start": t_start, "users": cfg.users,
                              "spawn_rate": cfg.spawn_rate, "user_class": cfg.user_class, "mode": cfg.mode,
                              "rate": cfg.rate, "locust": locust.__version__, "workers": n, "master": address})
        cap_g = gevent.spawn_later(cfg.max_duration_s, request_stop, "max_duration")
        stop_event.wait()
        cap_g.kill(block=False)
        if failure:
            raise failure[0]

        t_quit = time.monotonic()
        for node in synced:
            runner.send_message(STOP, None, client_id=node.id)
        wait_s = cfg.stop_grace_s + 10.0
        # the watchdog has returned (stop_event is set): watch the workers until each has ended
        deadline = time.monotonic() + wait_s
        while not ended.wait(0.1):
            for p in procs:
                node = next((x for x in nodes.values() if x.pid == p.pid), None)
                if p.poll() is not None and (node is None or node.end is None):
                    raise WorkerFailure("worker", f"{node.name if node else f'pid {p.pid}'} exited while "
                                                  f"stopping ({_exit_text(p.returncode)}) without its end",
                                        "LoadWorkerLost")
            if time.monotonic() > deadline:
                missing = ", ".join(x.name for x in synced if x.end is None)
                raise WorkerFailure("worker", f"no end from {missing} within {wait_s:g} s of stop", "LoadWorkerLost")
        ends = [x for x in synced if x.end]
        t_stop = max(float(x.end["t_stop"]) - (x.offset.applied_s if x.offset else 0.0) for x in ends)
        total = {k: sum(int(x.end.get(k, 0)) for x in ends)
                 for k in ("requests", "failures", "writes", "reads", "user_errors")}
        out.send(wire.END, {"reason": reason[0], **total, "t_stop": t_stop,
                            "grace_exceeded": any(bool(x.end.get("grace_exceeded")) for x in ends),
                            "stop_s": time.monotonic() - t_quit})
        return EXIT_OK
    finally:
        stdin_g.kill(block=False)
        dog_g.kill(block=False)
        try:
            runner.quit()           # Locust's quit message: workers exit (reaped by run_master)
        except Exception:       # noqa: BLE001 - on the way out; the procs are reaped anyway
            pass
        signal.setitimer(signal.ITIMER_REAL, 0)


# ─────────────────────────────── worker ───────────────────────────────

def run_worker(master: str, locustfile: str, user_class: str, stdin_eof: bool) -> int:
    try:
        import locust  # noqa: F401 - monkey-patches the process with gevent
    except Exception as e:
        raise WorkerFailure("import-locust", f"importing locust failed: {e}", type(e).__name__) from None
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Imported only once the master's config has set the environment (a locustfile may read
    # CONTINUUM_REQUEST_TIMEOUT when it is imported), as the master's own forks were.
    path = os.path.abspath(locustfile)
    return _work(master, None, stdin_eof, lambda: find_user_class(load_locustfile(path), user_class))


def _work(master: str, cls: type | None, stdin_eof: bool, load_class: Callable[[], type] | None = None) -> int:
    """A worker's life once locust is imported: join, take the config, send batches, end."""
    import gevent
    import gevent.event
    from gevent import os as gos
    from locust.env import Environment

    if master == "-":           # a local worker: the master says where it listens once it does
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(0, 256)
            if not chunk:
                return EXIT_OK          # the master ended before it listened
            line += chunk
        master = line.decode().strip()
    host, port = split_address(master)
    if port == 0:
        raise WorkerFailure("args", f"--master needs the master's port, got {master!r}")
    # host and stop timeout come with Locust's spawn; the user class by name, from the config
    env = Environment(user_classes=[cls] if cls is not None else [])
    rec = Recorder()
    env.events.request.add_listener(rec.on_request)
    env.events.user_error.add_listener(rec.on_user_error)
    runner = env.create_worker_runner(host, port)   # Locust retries until the master answers

    seq = [0]
    flush_done = gevent.event.Event()
    done = gevent.event.Event()
    flush_g: list[Any] = []
    cfg_box: list[WorkerConfig] = []
    cls_box: list[type] = [cls] if cls is not None else []

    def send_batch() -> None:
        batch = rec.take_batch() or {"n": [], "s": [], "w": []}     # empty: a heartbeat
        batch["u"] = runner.user_count
        batch["q"] = seq[0]
        seq[0] += 1             # before sending: a batch that failed to go is a gap, seen as one
        runner.send_message(BATCH, batch)

    def flusher(interval: float) -> None:
        while not flush_done.wait(interval):
            send_batch()

    def on_ping(environment=None, msg=None, **_kw) -> None:
        runner.send_message(PONG, {"t0": msg.data["t0"], "tw": time.monotonic()})

    def on_config(environment=None, msg=None, **_kw) -> None:
        d = msg.data
        try:
            cfg = WorkerConfig(**d["config"])
            cfg.validate()
        except (TypeError, ValueError) as e:
            print(f"continuum load worker: bad config from the master: {e}", file=sys.stderr)
            os._exit(EXIT_ERROR)
        cfg_box.append(cfg)
        os.environ.update(cfg.env)
        os.environ[REQUEST_TIMEOUT_ENV] = repr(float(cfg.request_timeout_s))
        if not cls_box:
            try:
                cls_box.append(load_class())
            except WorkerFailure as e:
                print(f"continuum load worker: {e.stage}: {e}", file=sys.stderr)
                os._exit(EXIT_ERROR)        # the master names this worker as lost
        user = cls_box[0]
        apply_request_timeout(user, cfg.request_timeout_s)
        if cfg.mode == "open":
            # the master's origin on this worker's clock; this worker's share of the slots
            arrivals = Arrivals(cfg.rate, origin=float(d["origin"]) + float(d["applied_s"]),
                                index=int(d["index"]), stride=int(d["stride"]))
            user = paced(user, arrivals)
        env.user_classes = [user]
        signal.setitimer(signal.ITIMER_REAL, cfg.max_duration_s + cfg.stop_grace_s + cfg.hard_cap_slack_s + 10)
        flush_g.append(gevent.spawn(flusher, cfg.flush_interval_s))

    def on_stop(environment=None, msg=None, **_kw) -> None:
        cfg = cfg_box[0] if cfg_box else None
        t_quit = time.monotonic()
        runner.stop()           # users get the stop timeout (stop_grace_s) to finish their task
        t_stop = time.monotonic()
        flush_done.set()
        for g in flush_g:
            g.join()
        send_batch()            # the last requests
        runner.send_message(END, {"batches": seq[0], "requests": rec.requests, "failures": rec.failures,
                                  "writes": rec.writes, "reads": rec.reads, "user_errors": rec.user_errors,
                                  "t_stop": t_stop,
                                  "grace_exceeded": bool(cfg and cfg.stop_grace_s)
                                  and t_stop - t_quit >= cfg.stop_grace_s})
        done.set()

    runner.register_message(PING, on_ping)
    runner.register_message(CONFIG, on_config)
    runner.register_message(STOP, on_stop, concurrent=True)
    runner.send_message(HELLO, {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": boot_id()})

    waits = [gevent.spawn(runner.greenlet.join)]     # a Group: ends on Locust's quit
    if stdin_eof:
        def watch_stdin() -> None:
            gos.make_nonblocking(0)
            while True:
                try:
                    if not gos.nb_read(0, 4096):
                        return
                except OSError:
                    return
        waits.append(gevent.spawn(watch_stdin))
    gevent.wait(waits, count=1)     # Locust's quit from the master, or the master gone
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="continuum load-worker",
                                 description="A load worker that joins a Continuum load master (docs/scaling.md).")
    ap.add_argument("--master", required=True, metavar="HOST:PORT", help="the master's address")
    ap.add_argument("--locustfile", required=True, help="the target's locustfile (the same file as the master's)")
    ap.add_argument("--user-class", required=True, help="the load profile's user class")
    ap.add_argument("--stdin-eof", action="store_true", help="exit when stdin closes (local workers)")
    args = ap.parse_args(argv)
    try:
        if args.master != "-":          # "-": read it from stdin (the master's own workers)
            split_address(args.master)
    except ValueError as e:
        ap.error(f"--master: {e}")
    if not os.path.isfile(args.locustfile):
        ap.error(f"--locustfile: not a file: {args.locustfile}")
    signal.signal(signal.SIGINT, signal.SIG_IGN if args.stdin_eof else signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    try:
        return run_worker(args.master, args.locustfile, args.user_class, args.stdin_eof)
    except WorkerFailure as e:
        print(f"continuum load worker: {e.stage}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BaseException as e:     # noqa: BLE001 - report anything, then fail
        traceback.print_exc()
        return EXIT_ERROR


if __name__ == "__main__":
    code = single.main(master_main) if len(sys.argv) == 1 else main()
    sys.stderr.flush()
    os._exit(code)

"""Leader kills on targets/patroni (synchronous replication) and targets/patroni-async, by hand.

Live roles from an HTTP probe are not in the harness yet (issue 15), so "kill the current leader"
cannot be written as an experiment; this script does what such an experiment would:

  1. bring the target up with the harness's Stack (images built if missing);
  2. start W writer threads on the host, each a pg8000 connection through the published HAProxy
     entry points (alternating between the two LBs), writing BEGIN; INSERT <uuid>; COMMIT in a
     loop, reconnecting after any error (50 ms pause). A write counts as acknowledged only when
     COMMIT returned;
  3. K times: find the leader by asking each node `GET :8008/primary` from inside a container
     (HAProxy's), SIGKILL its container, and measure
       to leader   first moment another node answers 200 on /primary (polled every ~0.2 s),
       to writes   completion of the first acknowledged write that *started* after the kill
                   call returned, minus that moment;
     then wait S seconds, start the killed container again, and wait until every node runs and
     the leader reports two streaming replicas (and, in synchronous mode, a sync standby) before
     the next kill;
  4. stop the writers, read every id back on the leader (`continuum-readback` via docker exec,
     cross-checked with the locustfile's `readback()` through HAProxy), and classify each write:
     lost (acknowledged, absent), recovered (outcome unknown, present), unexpected (present,
     never attempted). Lost writes are attributed to the kill before which they were acked.

    .venv/bin/python benchmarks/patroni_failover.py [--target targets/patroni-async] [--kills 5]
        [--writers 4] [--settle 5] [--json FILE]

Prints one line per kill and a summary. Takes about 40 s per kill plus ~40 s up and down.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.faults import FaultContext, build  # noqa: E402
from harness.stack.engine import connect  # noqa: E402
from harness.stack.images import ensure_images  # noqa: E402
from harness.stack.stack import Stack  # noqa: E402
from harness.loader import load_target  # noqa: E402

NODES = ("pg-1", "pg-2", "pg-3")


def _pgwrites(target: Path):
    """The target's Locust-free SQL module (importing the locustfile would monkey-patch us)."""
    spec = importlib.util.spec_from_file_location("patroni_pgwrites", target / "pgwrites.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Write:
    id: str
    t0: float
    t1: float
    ok: bool
    error: str = ""


@dataclass
class Kill:
    n: int
    victim: str                     # the container killed

    t_kill: float
    to_leader_s: float | None = None
    new_leader: str | None = None
    to_writes_s: float | None = None
    failed_writes: int = 0
    stall_s: float | None = None
    lost: int = 0
    errors: dict = field(default_factory=dict)     # failed writes in the kill's window, by error
    note: str = ""


@dataclass
class Writers:
    lf: object
    eps: list[tuple[str, int]]
    n: int
    timeout: float
    writes: list[Write] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, k: int) -> None:
        conn = None
        ep = k % len(self.eps)
        name = f"bench-{k}"
        while not self.stop.is_set():
            wid = str(uuid.uuid4())
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = self.lf.connect(*self.eps[ep], timeout=self.timeout)
                self.lf.write(conn, wid, name)
                w = Write(wid, t0, time.monotonic(), True)
            except Exception as e:  # noqa: BLE001 - every failure is an unknown outcome
                w = Write(wid, t0, time.monotonic(), False, f"{type(e).__name__}: {str(e)[:80]}")
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass
                conn = None
                ep = (ep + 1) % len(self.eps)
                time.sleep(0.05)
            with self.lock:
                self.writes.append(w)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in range(self.n)]
        for t in threads:
            t.start()
        return threads

    def snapshot(self) -> list[Write]:
        with self.lock:
            return list(self.writes)


def primaries(stack: Stack) -> list[str]:
    """Nodes answering 200 on GET :8008/primary, asked from inside lb-1 (one exec, three URLs;
    curl's -w is global, so each line names its own URL)."""
    argv = ["curl", "-s", "-m", "0.5", "-w", "%{url_effective} %{http_code}\\n"]
    for n in NODES:
        argv += ["-o", "/dev/null", f"http://{n}:8008/primary"]
    _, out = stack.container("lb-1").exec_run(argv)
    found = []
    for line in out.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "200":
            found.append(parts[0].split("//", 1)[1].split(":", 1)[0])
    return found


def patroni_status(stack: Stack, node: str) -> dict | None:
    code, out = stack.container(node).exec_run(["curl", "-fsS", "-m", "1", "http://127.0.0.1:8008/patroni"])
    if code != 0:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return None


def wait_converged(stack: Stack, sync: bool, timeout_s: float = 90.0) -> str:
    """Until one leader has two streaming replicas (one of them sync in synchronous mode)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        leaders = primaries(stack)
        if len(leaders) == 1:
            st = patroni_status(stack, leaders[0]) or {}
            repl = [r for r in st.get("replication", []) if r.get("state") == "streaming"]
            syncs = [r for r in repl if r.get("sync_state") == "sync"]
            if len(repl) == 2 and (not sync or syncs):
                return leaders[0]
            last = f"leader {leaders[0]}: {len(repl)} streaming, {len(syncs)} sync"
        else:
            last = f"primaries: {leaders}"
        time.sleep(0.5)
    raise RuntimeError(f"cluster did not converge in {timeout_s:.0f} s ({last})")


def standby_of(stack: Stack, leader: str, sync: bool) -> str:
    """The leader's synchronous standby (synchronous mode), else its first streaming replica."""
    st = patroni_status(stack, leader) or {}
    repl = [r for r in st.get("replication", []) if r.get("state") == "streaming"]
    chosen = [r for r in repl if r.get("sync_state") == "sync"] if sync else repl
    if not chosen:
        raise RuntimeError(f"{leader} reports no {'synchronous ' if sync else ''}standby: {repl}")
    return chosen[0]["application_name"]


def readback_exec(stack: Stack, leader: str) -> list[str]:
    code, out = stack.container(leader).exec_run(["continuum-readback"], demux=True)
    stdout, stderr = out
    if code != 0:
        raise RuntimeError(f"continuum-readback on {leader} exited {code}: {(stderr or b'').decode()[-300:]}")
    return (stdout or b"").decode().split()


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default=str(ROOT / "targets/patroni"))
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--victim", choices=("leader", "standby", "partition"), default="leader",
                    help="kill the leader, or its synchronous standby (async: a streaming replica), "
                         "or cut the leader off from the replicas and etcd (HAProxy still reaches it)")
    ap.add_argument("--partition-for", type=float, default=20.0, help="seconds a partition lasts")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after writes recover before restarting")
    ap.add_argument("--timeout", type=float, default=2.0, help="pg8000 connect/read timeout, seconds")
    ap.add_argument("--json", help="write every kill and the summary here")
    args = ap.parse_args()

    target_dir = Path(args.target).resolve()
    target = load_target(target_dir)
    lf = _pgwrites(target_dir)
    sync = dict(target.service("pg").environment).get("PATRONI_SYNCHRONOUS_MODE", "true") == "true"
    client = connect()
    # The twin has no `build:` of its own: its images are targets/patroni's.
    ensure_images(client, [load_target(ROOT / "targets/patroni"), target])
    t_up = time.monotonic()
    kills: list[Kill] = []
    with Stack(target, client=client) as stack:
        up_s = time.monotonic() - t_up
        eps = [(u.split("//")[1].split(":")[0], int(u.rsplit(":", 1)[1])) for u in stack.endpoints()]
        print(f"{target.name}: run {stack.run_id} healthy in {up_s:.1f} s; synchronous_mode={sync}; entry points {eps}")
        wait_converged(stack, sync)
        writers = Writers(lf, eps, args.writers, args.timeout)
        threads = writers.start()
        time.sleep(3)
        for n in range(1, args.kills + 1):
            leader = wait_converged(stack, sync)
            time.sleep(1)
            victim = standby_of(stack, leader, sync) if args.victim == "standby" else leader
            c = stack.container(victim)
            cut = None
            if args.victim == "partition":
                # The split-brain case: the leader loses its replicas and the DCS, while HAProxy
                # (and so every client) can still reach it.
                others = tuple(x for x in NODES if x != leader) + ("etcd",)
                spec = build("partition", {"name": f"isolate-{leader}-{n}", "for": f"{args.partition_for:g}s",
                                           "groups": [[leader], list(others)]}, stack.target)
                cut = spec.inject(FaultContext(stack=stack, run_id=stack.run_id))
                t_kill = cut.applied_t
            else:
                c.kill(signal="SIGKILL")
                t_kill = time.monotonic()
            k = Kill(n, victim, t_kill)
            if victim != leader:                # the leader stays; only the write stall counts
                k.to_leader_s, k.new_leader = 0.0, leader
            deadline = t_kill + 60
            while time.monotonic() < deadline and (k.to_leader_s is None or k.to_writes_s is None):
                if k.to_leader_s is None:
                    others = [p for p in primaries(stack) if p != leader]
                    if others:
                        k.to_leader_s, k.new_leader = time.monotonic() - t_kill, others[0]
                if k.to_writes_s is None:
                    done = [w for w in writers.snapshot() if w.ok and w.t0 >= t_kill]
                    if done:
                        k.to_writes_s = min(w.t1 for w in done) - t_kill
                time.sleep(0.1)
            if k.to_writes_s is None:
                k.note = "no write succeeded within 60 s"
            if cut is not None:
                time.sleep(max(0.0, t_kill + args.partition_for - time.monotonic()))
                cut.revert()
            else:
                time.sleep(args.settle)
                c.start()
            kills.append(k)
            print(f"kill {n}: {victim} (leader {leader}) -> {k.new_leader or '?'}  leader after "
                  f"{k.to_leader_s if k.to_leader_s is None else round(k.to_leader_s, 2)} s, writes after "
                  f"{k.to_writes_s if k.to_writes_s is None else round(k.to_writes_s, 2)} s {k.note}", flush=True)
        leader = wait_converged(stack, sync)
        time.sleep(2)
        writers.stop.set()
        t_stopped = time.monotonic()
        for t in threads:
            t.join(timeout=args.timeout + 5)
        writes = writers.snapshot()
        leader = wait_converged(stack, sync)
        held = readback_exec(stack, leader)
        via_lb = lf.readback(eps)
        run_id = stack.run_id
    # ─── the audit ───
    present = set(held)
    acked = {w.id: w for w in writes if w.ok}
    unknown = {w.id: w for w in writes if not w.ok}
    lost = [w for i, w in acked.items() if i not in present]
    recovered = [w for i, w in unknown.items() if i in present]
    unexpected = present - set(acked) - set(unknown)
    # A failed write belongs to the fault whose window it started in. A lost write belongs to
    # the last fault that began at most 5 s after it was acknowledged: a kill discards writes
    # acknowledged just before it (not yet replicated), a partition those acknowledged during
    # it (by the isolated leader); 0 means before any fault.
    for k, nxt in zip(kills, kills[1:] + [None]):
        hi = nxt.t_kill if nxt else float("inf")
        window = [w for w in unknown.values() if k.t_kill <= w.t0 < hi]
        k.failed_writes = len(window)
        for w in window:
            key = w.error.split(":", 1)[0] + ": " + w.error.split(":", 1)[-1].strip()[:40]
            k.errors[key] = k.errors.get(key, 0) + 1
    acks = sorted(w.t1 for w in acked.values())
    for k in kills:
        # longest stretch without an acknowledged write in the 30 s after the kill (or until the
        # writers were stopped, if that came first)
        end = min(k.t_kill + 30, t_stopped)
        points = [k.t_kill] + [t for t in acks if k.t_kill < t <= end] + [end]
        k.stall_s = max(b - a for a, b in zip(points, points[1:]))
    lost_by_kill: dict[int, int] = {}
    for w in lost:
        began = [k.n for k in kills if k.t_kill - 5 <= w.t1]
        lost_by_kill[began[-1] if began else 0] = lost_by_kill.get(began[-1] if began else 0, 0) + 1
    for k in kills:
        k.lost = lost_by_kill.get(k.n, 0)
    times = [k.to_writes_s for k in kills if k.to_writes_s is not None]
    leaders = [k.to_leader_s for k in kills if k.to_leader_s is not None]
    summary = {
        "target": target.name, "run_id": run_id, "synchronous_mode": sync, "up_s": round(up_s, 1),
        "victim": args.victim,
        "kills": len(kills), "writes_attempted": len(writes), "acknowledged": len(acked),
        "unknown": len(unknown), "held": len(present), "lost": len(lost), "recovered": len(recovered),
        "unexpected": len(unexpected), "readback_agrees": sorted(held) == sorted(via_lb),
        "lost_before_first_fault": lost_by_kill.get(0, 0),
        "to_writes_s": {"median": statistics.median(times) if times else None,
                        "p95": percentile(times, 0.95) if times else None,
                        "max": max(times) if times else None, "misses": len(kills) - len(times)},
        "stall_s": {"median": statistics.median([k.stall_s for k in kills]) if kills else None,
                    "max": max([k.stall_s for k in kills]) if kills else None},
        "to_leader_s": {"median": statistics.median(leaders) if leaders else None,
                        "max": max(leaders) if leaders else None},
    }
    print()
    print(f"{'kill':>4} {'victim':>7} {'leader':>7} {'leader s':>9} {'writes s':>9} {'stall s':>8} {'failed':>7} {'lost':>5}")
    for k in kills:
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"{k.n:>4} {k.victim:>7} {k.new_leader or '-':>7} {fmt(k.to_leader_s):>9} {fmt(k.to_writes_s):>9} "
              f"{fmt(k.stall_s):>8} "
              f"{k.failed_writes:>7} {k.lost:>5} {k.note}")
        for e, count in sorted(k.errors.items(), key=lambda kv: -kv[1])[:4]:
            print(f"{'':>10} {count:>5} x {e}")
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "kills": [asdict(k) for k in kills],
                                               "lost": [asdict(w) for w in lost]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

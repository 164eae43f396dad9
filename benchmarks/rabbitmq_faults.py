"""Node kills and partitions against a running RabbitMQ target, measured from the host.

    .venv/bin/continuum up targets/rabbitmq                 # prints the run id
    .venv/bin/python benchmarks/rabbitmq_faults.py RUN_ID kill --rounds 5
    .venv/bin/python benchmarks/rabbitmq_faults.py RUN_ID partition --rounds 3 --hold 40
    .venv/bin/continuum down RUN_ID

Load: publishers (confirmed, persistent, unique ids) and manual-ack consumers from the target's
own client loops (targets/rabbitmq/amqp_client.py), as greenlets in this process, against every
node's published AMQP port, the way the Locust profile runs them. The loops fail over between
nodes by themselves.

kill:       each round finds the quorum queue's leader (management API), `docker kill`s it
            (SIGKILL), measures the time until a publish *sent after the kill* is confirmed, holds,
            `docker start`s it, and waits until it is healthy and back in the queue's online
            members before the next round.
partition:  each round cuts the leader off from the other two nodes (iptables DROP both ways in
            all three namespaces, as harness/faults/partition.py does; clients still reach every
            node), measures when publishes are confirmed again, when the cut-off node stops
            serving (pause_minority), and after healing when it serves and rejoins again.
            Rules are removed on every exit path and verified gone.

At the end the load stops, the queue is drained (targets/rabbitmq/readback.py) and every
confirmed publish is checked against every delivery: lost, duplicates, recovered.
Prints one JSON document (and progress on stderr).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from base64 import b64encode  # noqa: E402
from pathlib import Path  # noqa: E402

import docker  # noqa: E402
import gevent  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from harness.faults.netns import RuleSet  # noqa: E402
from harness.stack.instance import Instance  # noqa: E402
from harness.stack.netexec import HELPER_SERVICE, NetExec  # noqa: E402


def _load(name: str):
    mod_name = f"continuum_rabbitmq_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, ROOT / "targets" / "rabbitmq" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


amqp = _load("amqp_client")
rbm = _load("readback")


VICTIM = "leader"          # --victim: which node each round hits
REJOIN_WAIT_S = 120.0      # after a heal or a restart, how long a node gets to come back alone


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ───────────────────────────── the cluster ─────────────────────────────


class Cluster:
    def __init__(self, client: docker.DockerClient, run_id: str):
        self.client = client
        self.run_id = run_id
        self.containers = {}
        for c in client.containers.list(all=True, filters={"label": [f"io.continuum.run-id={run_id}",
                                                                       "io.continuum.service=rabbit"]}):
            self.containers[c.labels["io.continuum.instance"]] = c
        if len(self.containers) != 3:
            raise SystemExit(f"run {run_id}: expected 3 rabbit instances, found {sorted(self.containers)}")
        self.amqp_ports, self.http_ports = {}, {}
        for name, c in self.containers.items():
            bindings = c.attrs["HostConfig"]["PortBindings"]
            self.amqp_ports[name] = int(bindings["5672/tcp"][0]["HostPort"])
            self.http_ports[name] = int(bindings["15672/tcp"][0]["HostPort"])
        self.names = sorted(self.containers)
        # Namespace rules go through helper containers joined to each node's namespace; labelled
        # with the run, so `continuum down RUN` removes them (they also go when we exit).
        self.netexec = NetExec(client, lambda _name: {
            "io.continuum.run-id": run_id, "io.continuum.owner": "detached",
            "io.continuum.service": HELPER_SERVICE}, lambda suffix: f"continuum-{run_id}-bench-{suffix}")

    def endpoints(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", self.amqp_ports[n]) for n in self.names]

    def api(self, name: str, path: str, timeout: float = 1.0):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_ports[name]}/api{path}")
        req.add_header("Authorization", "Basic " + b64encode(f"{amqp.USER}:{amqp.PASSWORD}".encode()).decode())
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def serving(self, name: str) -> bool:
        try:
            self.api(name, "/overview?columns=node", timeout=1.0)
            return True
        except Exception:  # noqa: BLE001
            return False

    def queue(self, via: list[str] | None = None, timeout: float = 3.0) -> dict | None:
        # Generous timeout: while a peer is cut off, every node's management API blocks on it
        # until the peer is declared down (net_ticktime), then answers in 1-2 s on this machine.
        for name in via or self.names:
            try:
                q = self.api(name, f"/queues/%2F/{amqp.QUEUE}", timeout=timeout)
                return {"leader": q.get("leader"), "members": sorted(q.get("members") or []),
                        "online": sorted(q.get("online") or []), "asked": name}
            except Exception:  # noqa: BLE001
                continue
        return None

    def leader(self, via: list[str] | None = None) -> str | None:
        q = self.queue(via)
        if not q or not q["leader"]:
            return None
        return q["leader"].split("@", 1)[1]

    def health(self, name: str) -> str:
        c = self.containers[name]
        c.reload()
        return ((c.attrs["State"].get("Health") or {}).get("Status")) or c.attrs["State"]["Status"]

    def whole(self) -> bool:
        q = self.queue()
        return bool(all(self.health(n) == "healthy" for n in self.names) and q and len(q["online"]) == 3
                    and q["leader"])

    def wait_whole(self, timeout_s: float = 120.0, *, fatal: bool = True) -> float | None:
        """Seconds until every node is healthy and the queue has all three members online."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.whole():
                return time.monotonic() - t0
            gevent.sleep(0.2)
        if fatal:
            raise SystemExit(f"cluster not whole after {timeout_s:.0f} s: {self.queue()}")
        return None

    def rescue(self, name: str) -> float:
        """A node that did not come back by itself: `docker restart` it; seconds until whole."""
        t0 = time.monotonic()
        self.containers[name].restart(timeout=15)
        self.wait_whole(180)
        return time.monotonic() - t0

    def boot_stack(self, name: str) -> str:
        """What a node's boot is waiting on, when it hangs (processes in global/rabbit code)."""
        probe = ('io:format("~p", [[{P, element(2, erlang:process_info(P, current_function))} || '
                 'P <- processes(), lists:member(element(1, element(2, erlang:process_info(P, '
                 'current_function))), [global, rabbit_mnesia, rabbit_peer_discovery, mnesia])]]).')
        code, out = self.containers[name].exec_run(["rabbitmqctl", "eval", probe])
        return out.decode(errors="replace").strip()[:400]


# ───────────────────────────── the load ─────────────────────────────


class History:
    def __init__(self) -> None:
        self.ops: list[tuple[float, float, str, bool, str | None, str | None, str]] = []
        # (t_start, t_end, name, ok, write_id, read_id, error)

    def fire(self, *, request_type, name, response_time, response_length, exception, context) -> None:
        t_end = time.monotonic()
        ctx = context or {}
        self.ops.append((t_end - response_time / 1000.0, t_end, name, exception is None,
                         ctx.get("write_id"), ctx.get("read_id"),
                         "" if exception is None else type(exception).__name__))

    def write_errors(self) -> dict[str, str]:
        return {w: err for _, _, n, ok, w, _, err in self.ops if n == "publish" and w is not None and not ok}

    def writes(self):
        return [(w, ok) for _, _, n, ok, w, _, _ in self.ops if n == "publish" and w is not None]

    def reads(self):
        return [r for _, _, n, ok, _, r, _ in self.ops if n == "consume" and r is not None]

    def first_confirm_after(self, t: float) -> float | None:
        ends = [e for s, e, n, ok, w, _, _ in self.ops if n == "publish" and ok and s >= t]
        return min(ends) if ends else None

    def window(self, t0: float, t1: float) -> dict:
        pubs = [(s, e, ok, err) for s, e, n, ok, w, _, err in self.ops if n == "publish" and t0 <= s < t1]
        oks = sorted(e for s, e, ok, _ in pubs if ok)
        gaps = [b - a for a, b in zip(oks, oks[1:])]
        errors: dict[str, int] = {}
        for *_, ok, err in pubs:
            if not ok:
                errors[err] = errors.get(err, 0) + 1
        return {"publishes": len(pubs), "confirmed": len(oks), "failed": len(pubs) - len(oks),
                "longest_confirm_gap_s": round(max(gaps), 3) if gaps else None, "errors": errors}


class Load:
    def __init__(self, endpoints, publishers: int, consumers: int, timeout_s: float):
        self.history = History()
        self.stopping = False
        self.loops = [amqp.PublisherLoop(endpoints, timeout_s, self.history.fire, start=i)
                      for i in range(publishers)]
        self.loops += [amqp.ConsumerLoop(endpoints, timeout_s, self.history.fire, start=i + 1)
                       for i in range(consumers)]
        self.greenlets = []

    def _run(self, loop) -> None:
        while not self.stopping:
            loop.step()
            gevent.sleep(0.002)
        loop.close()

    def start(self) -> None:
        self.greenlets = [gevent.spawn(self._run, loop) for loop in self.loops]

    def stop(self) -> None:
        self.stopping = True
        gevent.joinall(self.greenlets, timeout=15)
        gevent.killall([g for g in self.greenlets if not g.dead], block=True, timeout=5)


def wait_until(pred, timeout_s: float, step_s: float = 0.05) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        value = pred()
        if value:
            return value
        gevent.sleep(step_s)
    return None


# ───────────────────────────── faults ─────────────────────────────


def log_times(container, wall_from: float, pattern: str) -> list[float]:
    """Wall-clock times of the node's log lines containing `pattern` since `wall_from`."""
    import datetime as dt
    import re

    out = []
    text = container.logs(since=int(wall_from) - 1, timestamps=False).decode(errors="replace")
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)      # warnings and notices come coloured
        if pattern in line and line[:4].isdigit():
            stamp = dt.datetime.fromisoformat(line.split(" [", 1)[0].replace(" ", "T"))
            if stamp.timestamp() >= wall_from:
                out.append(stamp.timestamp())
    return out


def pick(cl: Cluster, victim: str) -> str:
    """The instance that holds the role: the queue's leader, or one of its followers."""
    leader = cl.leader()
    if leader is None:
        raise SystemExit("no queue leader to pick from")
    if victim == "leader":
        return leader
    if victim == "follower":
        return sorted(n for n in cl.names if n != leader)[0]
    return victim                       # an instance named on the command line


def die_time(cl: Cluster, container, wall_from: float) -> float | None:
    """When the engine saw the container die (docker events), on this process's monotonic clock."""
    offset = time.time() - time.monotonic()
    events = cl.client.events(since=int(wall_from) - 1, until=int(time.time()) + 2, decode=True,
                              filters={"container": container.id, "event": "die"})
    stamps = [e["timeNano"] / 1e9 for e in events if e.get("timeNano")]
    stamps = [s for s in stamps if s >= wall_from - 0.5]
    return (min(stamps) - offset) if stamps else None


def kill_round(k: int, cl: Cluster, load: Load, hold_s: float, timeout_s: float) -> dict:
    cl.wait_whole()
    gevent.sleep(2.0)
    leader = pick(cl, VICTIM)
    victim = cl.containers[leader]
    say(f"kill {k}: {VICTIM} is {leader}; docker kill")
    wall_call, t_call = time.time(), time.monotonic()
    victim.kill()
    t_ret = time.monotonic()
    others = [n for n in cl.names if n != leader]
    new_leader_t = wait_until(lambda: (lambda l: time.monotonic() if l and l != leader else None)(cl.leader(others)), 60, 0.1)
    gevent.sleep(max(0.0, hold_s - (time.monotonic() - t_call)))
    t_die = die_time(cl, victim, wall_call) or t_ret
    t_ok = load.history.first_confirm_after(t_die)
    # Publishes that could be hurt: sent up to one timeout before the death, until now.
    stats = load.history.window(t_die - timeout_s - 0.5, time.monotonic())
    say(f"kill {k}: confirms again {t_ok - t_die if t_ok else float('nan'):.3f} s after death; docker start {leader}")
    t_start = time.monotonic()
    victim.start()
    back = cl.wait_whole(REJOIN_WAIT_S, fatal=False)
    restart_s = time.monotonic() - t_start
    rescue_s = None
    if back is None:
        say(f"kill {k}: {leader} did not rejoin within {REJOIN_WAIT_S:.0f} s ({cl.boot_stack(leader)}); docker restart")
        rescue_s = round(cl.rescue(leader), 3)
    return {
        "round": k, "killed": leader,
        "kill_call_s": round(t_ret - t_call, 3), "died_after_call_s": round(t_die - t_call, 3),
        "new_leader": cl.leader(others),
        "new_leader_seen_via_api_s": round(new_leader_t - t_die, 3) if new_leader_t else None,
        "confirms_again_s": round(t_ok - t_die, 3) if t_ok else None,
        "restart_to_whole_s": round(restart_s, 3) if back is not None else None,
        "rejoined_by_itself": back is not None, "rescue_restart_s": rescue_s,
        **stats,
    }


def partition_round(k: int, cl: Cluster, load: Load, hold_s: float, timeout_s: float) -> dict:
    cl.wait_whole()
    gevent.sleep(2.0)
    leader = pick(cl, VICTIM)
    others = [n for n in cl.names if n != leader]
    rules = RuleSet(f"continuum:rabbitmq-faults:{cl.run_id}:p{k}")
    handles = {n: Instance(cl.containers[n], n, "rabbit", cl.netexec) for n in cl.names}
    ips = {n: handles[n].ips() for n in cl.names}
    say(f"partition {k}: cutting {leader} off from {', '.join(others)}")
    try:
        a = handles[leader]
        for b_name in others:
            b = handles[b_name]
            for ip_b in ips[b_name]:
                rules.add(a, "OUTPUT", ["-d", ip_b])
                rules.add(a, "INPUT", ["-s", ip_b])
            for ip_a in ips[leader]:
                rules.add(b, "INPUT", ["-s", ip_a])
                rules.add(b, "OUTPUT", ["-d", ip_a])
        t_cut = rules.apply()               # every namespace at once; the cut is whole here
        t_first = rules.first_t
        wall_cut = time.time()
        t_ok = wait_until(lambda: load.history.first_confirm_after(t_cut), hold_s)
        new_leader_t = None
        t_end = t_cut + hold_s
        while time.monotonic() < t_end:
            now = time.monotonic()
            if new_leader_t is None:
                l = cl.leader(others)
                if l and l != leader:
                    new_leader_t = now
            gevent.sleep(0.2)
        stats = load.history.window(t_first - timeout_s - 0.5, time.monotonic())
        minority_queue = cl.queue([leader])
    finally:
        verdict, _ = rules.remove_all()
    t_heal, wall_heal = time.monotonic(), time.time()
    say(f"partition {k}: healed ({verdict})")
    t_serving = wait_until(lambda: time.monotonic() if cl.serving(leader) else None, REJOIN_WAIT_S, 0.2)
    rejoined = cl.wait_whole(max(1.0, REJOIN_WAIT_S - (time.monotonic() - t_heal)), fatal=False) is not None
    t_whole = time.monotonic() if rejoined else None
    paused = log_times(cl.containers[leader], wall_cut, "Cluster minority/secondary status detected")
    resumed = log_times(cl.containers[leader], wall_heal, "Server startup complete")
    stuck, rescue_s = None, None
    if not rejoined:
        stuck = cl.boot_stack(leader)
        say(f"partition {k}: {leader} did not rejoin within {REJOIN_WAIT_S:.0f} s ({stuck}); docker restart")
        rescue_s = round(cl.rescue(leader), 3)
    return {
        "round": k, "isolated": leader, "new_leader": cl.leader(others),
        "cut_at": time.strftime("%H:%M:%S", time.gmtime(wall_cut)),
        "rules_s": round(t_cut - t_first, 3),
        "confirms_again_s": round(t_ok - t_cut, 3) if t_ok else None,
        "new_leader_seen_s": round(new_leader_t - t_cut, 3) if new_leader_t else None,
        # from the node's own log: pause_minority's verdict, and its restart after the heal
        "isolated_paused_s": round(paused[0] - wall_cut, 3) if paused else None,
        "heal_to_resumed_s": round(resumed[0] - wall_heal, 3) if resumed else None,
        "isolated_view_at_end": minority_queue,
        "heal_to_serving_s": round(t_serving - t_heal, 3) if t_serving else None,
        "heal_to_whole_s": round(t_whole - t_heal, 3) if t_whole else None,
        "rejoined_by_itself": rejoined, "stuck_in": stuck, "restart_to_whole_s": rescue_s,
        **stats,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_id")
    ap.add_argument("fault", choices=["kill", "partition"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hold", type=float, default=None, help="seconds each fault lasts (kill 10, partition 40)")
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=2.0, help="publish confirm timeout, s")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--victim", choices=["leader", "follower", "rabbit-1", "rabbit-2", "rabbit-3"],
                    default="leader",
                    help="which node each round kills or cuts off: the queue's leader (default), "
                         "a follower, or one instance every round")
    args = ap.parse_args()
    global VICTIM
    VICTIM = args.victim
    hold = args.hold if args.hold is not None else (10.0 if args.fault == "kill" else 40.0)

    cl = Cluster(docker.from_env(timeout=30), args.run_id)
    load = Load(cl.endpoints(), args.publishers, args.consumers, args.timeout)
    t0 = time.monotonic()
    load.start()
    gevent.sleep(args.warmup)
    rounds = []
    try:
        for k in range(1, args.rounds + 1):
            fn = kill_round if args.fault == "kill" else partition_round
            rounds.append(fn(k, cl, load, hold, args.timeout))
            say(json.dumps(rounds[-1]))
        gevent.sleep(3.0)
    finally:
        load.stop()
    run_s = time.monotonic() - t0
    say("load stopped; draining the queue")
    rb = rbm.readback(cl.endpoints(), timeout_s=120)
    check = rbm.classify(load.history.writes(), load.history.reads(), rb.ids if rb.complete else None)
    if rb.complete:
        delivered = set(load.history.reads()) | set(rb.ids)
        by_error: dict[str, dict[str, int]] = {}
        for wid, err in load.history.write_errors().items():
            slot = by_error.setdefault(err, {"delivered": 0, "absent": 0})
            slot["delivered" if wid in delivered else "absent"] += 1
        check["unconfirmed_by_error"] = by_error
    rec = [r["confirms_again_s"] for r in rounds if r.get("confirms_again_s") is not None]
    out = {
        "fault": args.fault, "victim": args.victim, "rounds": rounds, "run_s": round(run_s, 1),
        "publishers": args.publishers, "consumers": args.consumers, "confirm_timeout_s": args.timeout,
        "confirms_again_s": {"values": rec, "median": statistics.median(rec) if rec else None,
                             "max": max(rec) if rec else None},
        "overall": load.history.window(t0, time.monotonic()),
        "readback": {k: v for k, v in rb.to_json().items() if k != "ids"},
        "check": check,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

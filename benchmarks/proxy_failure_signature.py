"""Does the proxy change what failure looks like? One app replica of the reference killed under
load, seen by its clients with the LB→app links interposed and without.

Variants, alternating, N rounds each:
  - proxy: targets/reference as it is (lb→app-N through the run's Toxiproxy);
  - no proxy: the same target with the lb→app links removed and the LBs put on `backend`
    themselves (a copy in a temporary folder), so HAProxy reaches the apps directly;
  - before (with `--before DIR`): targets/reference under the harness found in DIR (for
    example the commit before a change), in a subprocess.

Each round: the stack up; GETs of a balance through both LBs from 8 threads (bounded: 22 s,
2 s timeout, one retry on the other LB like the locustfile); `app-2` SIGKILLed at 6 s and
started again at 14 s; then, before the stack goes, both HAProxies' logs are read. Printed per
variant (medians of the numbers, union of the kinds):
  - the user's view: requests, failures by kind, the longest run of failures (outage);
  - the LB's view, the client of the link: why HAProxy took app-2 out, in its own words (its
    health check's reason: `Layer4 timeout` is a connect that got no answer, `Layer4
    connection problem` a refused or reset connect, `Layer7 timeout` a connection accepted
    and then silent, `Socket error` one cut under the check). The reference's HAProxy logs at
    `notice`, so state changes only, not every request.

    .venv/bin/python benchmarks/proxy_failure_signature.py [--rounds 2] [--before DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DURATION_S, KILL_AT_S, START_AT_S = 22.0, 6.0, 14.0
VICTIM = "app-2"


def no_proxy_copy(tmp: Path) -> Path:
    """targets/reference without the lb→app links, its LBs on `backend` too."""
    import yaml

    dst = tmp / "reference"
    shutil.copytree(ROOT / "targets" / "reference", dst)
    text = (dst / "compose.yaml").read_text()
    text = text.replace("    networks: [edge]\n    ports:", "    networks: [edge, backend]\n    ports:", 1)
    text = text.replace("    - {from: lb, to: app, port: 8080}\n", "", 1)
    doc = yaml.safe_load(text)
    assert doc["services"]["lb"]["networks"] == ["edge", "backend"]
    assert all(link["from"] != "lb" for link in doc["x-continuum"]["links"])
    (dst / "compose.yaml").write_text(text)
    return dst


def drive(urls: list[str], stop_at: float, out: list) -> None:
    import requests

    session = requests.Session()
    i = 0
    while time.monotonic() < stop_at:
        t = time.monotonic()
        kind = "ok"
        for attempt in range(2):
            url = urls[(i + attempt) % len(urls)] + "/accounts/acc-001"
            try:
                r = session.get(url, timeout=2.0)
                kind = "ok" if r.status_code == 200 else f"HTTP {r.status_code}"
                break
            except requests.Timeout:
                kind = "timeout"
                break
            except requests.ConnectionError as exc:
                kind = "connection: " + type(exc.__context__ or exc).__name__
                session = requests.Session()
        out.append((t, time.monotonic(), kind))
        i += 1
        time.sleep(0.02)


def one_round(target_dir: Path) -> dict:
    from harness.loader import load_target
    from harness.stack.stack import Stack

    target = load_target(target_dir)
    with Stack(target) as stack:
        urls = stack.endpoints()
        samples: list = []
        t0 = time.monotonic()
        threads = [threading.Thread(target=drive, args=(urls, t0 + DURATION_S, samples)) for _ in range(8)]
        for th in threads:
            th.start()
        victim = stack.instance(VICTIM)
        time.sleep(max(0.0, t0 + KILL_AT_S - time.monotonic()))
        victim.kill()
        time.sleep(max(0.0, t0 + START_AT_S - time.monotonic()))
        victim.start()
        for th in threads:
            th.join()
        logs = "\n".join(stack.container(lb).logs(timestamps=True).decode(errors="replace")
                         for lb in ("lb-1", "lb-2"))
    fails = collections.Counter(k for _, _, k in samples if k != "ok")
    outage, run_start = 0.0, None
    for t, end, kind in sorted(samples):
        if kind != "ok":
            run_start = t if run_start is None else run_start
            outage = max(outage, end - run_start)
        else:
            run_start = None
    down_reasons = sorted({m.group(1).strip() for m in re.finditer(
        rf"Server app/{VICTIM} is DOWN, reason: ([^,]+)", logs)})
    return {"requests": len(samples), "failures": dict(fails), "outage_s": outage,
            "lb_down_reason": down_reasons}


def subprocess_round(tree: Path, target_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one-round", str(target_dir)],
                         cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"a round under {tree} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before", type=Path)
    ap.add_argument("--one-round", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one_round:
        print(json.dumps(one_round(args.one_round)))
        return
    from harness.loader import load_target
    from harness.stack.engine import connect
    from harness.stack.images import ensure_images

    ensure_images(connect(), [load_target(ROOT / "targets" / "reference")])
    results: dict[str, list[dict]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="continuum-bench-") as tmp:
        variants = {"proxy": ROOT / "targets" / "reference", "no proxy": no_proxy_copy(Path(tmp))}
        for r in range(args.rounds):
            if args.before:
                results["before (old proxy)"].append(subprocess_round(args.before.resolve(), ROOT / "targets" / "reference"))
                print(f"round {r + 1} before: {json.dumps(results['before (old proxy)'][-1])}", flush=True)
            for name, path in variants.items():
                results[name].append(subprocess_round(ROOT, path))
                print(f"round {r + 1} {name}: {json.dumps(results[name][-1])}", flush=True)
    print(f"\napp-2 killed at {KILL_AT_S:g} s, started at {START_AT_S:g} s; {args.rounds} rounds, medians")
    for name, rs in results.items():
        kinds = collections.Counter()
        for x in rs:
            kinds.update(x["failures"])
        reasons = sorted({reason for x in rs for reason in x["lb_down_reason"]})
        print(f"{name:20} requests {statistics.median(x['requests'] for x in rs):7.0f}  "
              f"failed {statistics.median(sum(x['failures'].values()) for x in rs):4.0f}  "
              f"outage {statistics.median(x['outage_s'] for x in rs) * 1000:6.0f} ms  "
              f"kinds {dict(kinds) or '-'}\n{'':20} HAProxy took app-2 out for: {reasons or '-'}")


if __name__ == "__main__":
    main()

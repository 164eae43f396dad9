"""The standard suite against a remote engine over mutual TLS (issue 12, item 3).

The remote engine is the tests' second engine (tests/second_engine.py: Debian's docker.io in a
container, `tcp://ADDRESS:2376` with `--tlsverify`); the reference's images are copied in with
save/load, then `continuum run experiments/` runs on this host with only DOCKER_HOST,
DOCKER_TLS_VERIFY and DOCKER_CERT_PATH set, as a user of a remote engine would. Prints each
experiment's verdict, the reasons of any miss, and that nothing of any run is left on the
remote engine afterwards.

Not a CI test: the copy is ~1 GB of images and the suite ~10 min on a nested engine
(tests/integration/test_remote_engine.py covers every fault kind there in ~2.5 min).

    .venv/bin/python benchmarks/remote_suite.py [EXPERIMENT_OR_DIR ...] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from harness import RUN_LABEL  # noqa: E402
from harness.loader import load_target  # noqa: E402
from harness.stack.images import NETEXEC_IMAGE, TOXIPROXY_IMAGE  # noqa: E402
from tests.second_engine import SecondEngine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["experiments/"])
    ap.add_argument("--report-dir", default="reports/remote-suite")
    args = ap.parse_args()
    target = load_target(ROOT / "targets" / "reference")
    images = sorted({s.image for s in target.services} | {TOXIPROXY_IMAGE, NETEXEC_IMAGE,
                                                          "debian:bookworm-slim"})
    outer = docker.from_env(timeout=600)
    t = time.monotonic()
    with SecondEngine.start(outer, images=images) as engine:
        env_tls = engine.enable_tls()
        print(f"remote engine {env_tls['DOCKER_HOST']}: {engine.timings}, "
              f"{len(images)} images copied; ready for the suite in {time.monotonic() - t:.1f} s", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")} | env_tls
        t = time.monotonic()
        rc = subprocess.call([str(ROOT / ".venv/bin/continuum"), "run", *args.paths,
                              "--report-dir", args.report_dir], cwd=ROOT, env=env)
        wall = time.monotonic() - t
        client = engine.tls_client()
        left = client.api.containers(all=True, filters={"label": RUN_LABEL})
        nets = client.api.networks(filters={"label": RUN_LABEL})
        doc = json.loads((Path(args.report_dir) / "latest" / "results.json").read_text())
        print(f"\nsuite on the remote engine: exit {rc}, {wall:.0f} s; left on it: "
              f"{len(left)} containers, {len(nets)} networks of runs")
        for r in doc["runs"]:
            print(f"  {r['experiment']:28} {r['verdict']:6} {'; '.join(r['reasons'])[:200]}")
    return rc


if __name__ == "__main__":
    sys.exit(main())

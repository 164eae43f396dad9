"""Validation time on 1 MiB of worst-case input: each shape is written to a file just under the
1 MiB limit and validated in this process (`harness.loader`), the median of a few runs printed.

    .venv/bin/python benchmarks/validate_worst_case.py [--repeat 3]

The shapes are the ones that used to be slow or to crash: a huge flow sequence of tiny nodes
(the most parser events per byte), a mapping of many services, a deep depends_on chain in
reverse, a 1 MiB threshold string, a 1 MiB number, a long plain scalar, thousands of faults, and
alias fan-out. Every one must be refused or accepted in well under 2 s; the test
tests/unit/test_validate_linear.py runs the same generators with a generous bound.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.errors import InputError  # noqa: E402
from harness.loader import load_experiment, load_target  # noqa: E402

LIMIT = 1024 * 1024 - 64
HEAD = ("apiVersion: continuum/v1\nkind: Experiment\nname: worst\ndescription: worst case\n"
        "target: {target}\nduration: 60s\nload: {{profile: echo}}\n")


def shapes(target: Path, limit: int = LIMIT) -> dict[str, tuple[str, str | None]]:
    """name → (kind, text) of about `limit` bytes each; kind is "experiment" or "target"."""
    head = HEAD.format(target=target)

    def _fill(prefix: str, unit: str, suffix: str = "") -> str:
        n = (limit - len(prefix) - len(suffix)) // len(unit)
        return prefix + unit * n + suffix

    return {
        "flow sequence of 500k tiny nodes": ("experiment", _fill(head + "faults: [", "1,", "1]\nslo: {availability: '>= 1%'}\n")),
        "1 MiB threshold string": ("experiment", _fill(head + "slo: {availability: '>= ", "9", "%'}\n")),
        "1 MiB integer": ("experiment", _fill(head + "slo: {availability: '>= 1%'}\nmin_samples: ", "9", "\n")),
        "1 MiB plain scalar": ("experiment", _fill(head.replace("description: worst case\n", "") +
                                                   "slo: {availability: '>= 1%'}\ndescription: ", "a", "\n")),
        "many faults": ("experiment", _fill(head + "slo: {availability: '>= 1%'}\nfaults:\n",
                                            "  - {at: 1s, action: container.kill, select: {service: web}}\n")),
        "alias fan-out": ("experiment", head + "x: &a [" + "1," * 1000 + "1]\n" +
                          _fill("y: [", "*a,", "*a]\n")[: limit - len(head) - 3000]),
        "many services": ("target", _fill("services:\n", "  s{i}: {{image: 'a:1'}}\n")),
        "reversed depends_on chain": ("target", None),  # built below: every service depends on the next
        "many keys in one mapping": ("target", _fill("services:\n  a:\n    image: 'a:1'\n    environment:\n",
                                                     "      K{i}: v\n")),
        "1 MiB quoted command string": ("target", _fill("services:\n  a:\n    image: 'a:1'\n    command: '\"",
                                                        "a", "\"'\n")),
        # Just under the node budget: the most validation work a file can ask for.
        "1,500 services (under the node budget)": ("target", "services:\n" + "".join(
            f"  s{i}: {{image: 'a:1', networks: [n], cap_add: [NET_ADMIN]}}\n" for i in range(1500)) +
            "networks: {n: {}}\n"),
        "1,200 faults (under the node budget)": ("experiment", head + "slo: {availability: '>= 1%'}\nfaults:\n" + "".join(
            f"  - {{at: {i % 50 + 1}s, action: network.latency, link: host->web, latency: 10ms, for: 1s}}\n"
            for i in range(1200))),
        "19,000 ports (a quadratic check once)": ("target", "services:\n  a:\n    image: 'a:1'\n    ports: [" +
                                                  ",".join(f'"{i + 1}"' for i in range(19000)) + "]\n"),
        "19,000 depends_on names": ("target", "services:\n  a:\n    image: 'a:1'\n    depends_on: [" +
                                    ",".join(f"n{i}" for i in range(19000)) + "]\n"),
        "9,000 environment entries": ("target", "services:\n  a:\n    image: 'a:1'\n    environment:\n" + "".join(
            f"      K{i}: v{i}\n" for i in range(9000))),
    }


def _numbered(text: str, limit: int = LIMIT) -> str:
    out, i = [], 0
    for line in text.splitlines(keepends=True):
        if "{i}" in line or "{{" in line:
            line = line.replace("{{", "{").replace("}}", "}").replace("{i}", str(i))
            i += 1
        out.append(line)
    return "".join(out)[:limit]


def chain(limit: int = LIMIT) -> str:
    lines, i, size = ["services:\n"], 0, 10
    while size < limit - 200:
        line = f"  s{i}: {{image: 'a:1', depends_on: [s{i + 1}]}}\n"
        lines.append(line)
        size += len(line)
        i += 1
    lines.append(f"  s{i}: {{image: 'a:1'}}\n")
    return "".join(lines)


def write_case(tmp: Path, name: str, kind: str, text: str | None, limit: int = LIMIT) -> Path:
    if text is None:
        text = chain(limit)
    text = _numbered(text, limit) if "{i}" in text else text
    if kind == "target":
        d = tmp / ("t-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-"))
        d.mkdir()
        (d / "compose.yaml").write_text(text)
        return d
    f = tmp / (name.replace(" ", "-") + ".yaml")
    f.write_text(text)
    return f


def validate(kind: str, path: Path) -> tuple[float, str]:
    t = time.perf_counter()
    try:
        (load_target if kind == "target" else load_experiment)(path)
        outcome = "accepted"
    except InputError as e:
        outcome = "refused: " + str(e).split(": ", 1)[-1].splitlines()[0][:70]
    return time.perf_counter() - t, outcome


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        target = ROOT / "targets" / "echo"
        worst = 0.0
        for name, (kind, text) in shapes(target).items():
            path = write_case(tmp, name, kind, text)
            size = (path / "compose.yaml" if path.is_dir() else path).stat().st_size
            times, outcome = [], ""
            for _ in range(args.repeat):
                s, outcome = validate(kind, path)
                times.append(s)
            med = statistics.median(times)
            worst = max(worst, med)
            print(f"{name:34} {size / 1024:7.0f} KiB  median {med:6.3f} s  {outcome}")
        print(f"worst median: {worst:.3f} s (limit 2 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

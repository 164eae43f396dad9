"""Run a target's read-back function in a process of its own and print its answer as JSON.

    python -m harness.target.call FILE FUNCTION TIMEOUT_S      (CONTINUUM_ENDPOINTS in the env)

The function is called as `FUNCTION(endpoints, timeout_s=TIMEOUT_S)` (or `FUNCTION(endpoints)`
when it takes no timeout) and returns the ids (a list) or a JSON-able document (a dataclass
becomes a mapping). It raises to say it could not read; this process then exits 1 and the
harness records the read-back as failed (durability unknown). A child process, because the
file may import Locust (gevent patches the whole process) or anything else.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m harness.target.call FILE FUNCTION TIMEOUT_S", file=sys.stderr)
        return 2
    path, name, timeout_s = Path(argv[0]), argv[1], float(argv[2])
    out = os.dup(1)
    os.dup2(2, 1)                   # a print() in the target's code must not corrupt the answer
    spec = importlib.util.spec_from_file_location("continuum_readback", path)
    if spec is None or spec.loader is None:
        print(f"cannot load {path} as a Python module", file=sys.stderr)
        return 1
    module = importlib.util.module_from_spec(spec)
    sys.modules["continuum_readback"] = module
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        print(f"{path} has no function {name!r}", file=sys.stderr)
        return 1
    endpoints = [e for e in os.environ.get("CONTINUUM_ENDPOINTS", "").split(",") if e]
    params = inspect.signature(fn).parameters
    result = fn(endpoints, timeout_s=timeout_s) if "timeout_s" in params else fn(endpoints)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    text = json.dumps(result, default=lambda o: sorted(o) if isinstance(o, (set, frozenset))
                      else str(o))
    os.write(out, text.encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

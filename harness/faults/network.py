"""Network faults on the run's Toxiproxy links: toxics (latency, bandwidth, timeout,
reset_peer, slow_close, slicer, limit_data) and link down (the proxy disabled).

Toxics are added and removed one by one, by name, and each removal is read back. We never
call Toxiproxy's global /reset: two overlapping faults on one link must not undo each other.
"""

from __future__ import annotations

import time

from harness.errors import FaultError, ToxiproxyError
from harness.faults.base import FaultContext, Injection
from harness.model import FaultSpec


def inject(ctx: FaultContext, fault: FaultSpec) -> Injection:
    tp = ctx.stack.toxiproxy
    if tp is None:
        raise FaultError("this run has no Toxiproxy")
    links = list(fault.links)
    if not links:
        raise FaultError(f"fault {fault.name} names no link")
    done: list[tuple[str, str | None]] = []  # (link, toxic name | None for down)

    def revert() -> tuple[str, float]:
        errors = []
        restored_t = time.monotonic()
        for link, toxic_name in reversed(done):
            try:
                if toxic_name is None:
                    restored_t = tp.set_enabled(link, True)
                else:
                    restored_t = tp.remove_toxic(link, toxic_name)
            except ToxiproxyError as exc:
                errors.append(str(exc))
        if errors:
            raise FaultError("; ".join(errors))
        return "restored: " + ", ".join(sorted({l for l, _ in done})), restored_t

    applied_t = time.monotonic()
    try:
        for link in links:
            if fault.action == "network.down":
                applied_t = tp.set_enabled(link, False)
                done.append((link, None))
                continue
            for i, toxic in enumerate(fault.toxics):
                toxic_name = f"continuum-{fault.name}-{toxic.stream}-{i}"
                applied_t = tp.add_toxic(link, toxic_name, toxic)
                done.append((link, toxic_name))
    except ToxiproxyError as exc:
        revert_error = ""
        try:
            revert()
        except FaultError as e:
            revert_error = f" (and undoing the part applied failed: {e})"
        raise FaultError(f"{fault.action} on {', '.join(links)} failed: {exc}{revert_error}") from exc
    return Injection(fault, tuple(links), revert, applied_t=applied_t)

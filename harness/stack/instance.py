"""One running instance of a target service, as faults see it.

A thin handle over the Docker SDK's container with a timeout on everything that waits and
every engine error translated at one place (`docker_errors`): fault families never import
Docker and never see its exceptions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from docker.models.containers import Container

from harness.errors import FaultError, StackError
from harness.stack.archive import copy_in, copy_out
from harness.stack.engine import docker_errors
from harness.timestamps import WallClock, parse_rfc3339

if TYPE_CHECKING:
    from harness.stack.netexec import NetExec, Namespace

POLL_S = 0.05


class Instance:
    def __init__(self, container: Container, name: str, service: str, netexec: "NetExec | None" = None,
                 before_kill: "Callable[[str], None] | None" = None,
                 before_start: "Callable[[str], None] | None" = None):
        self._c = container
        self.name = name            # app-2
        self.service = service      # app
        self._netexec = netexec
        # The stack takes it out of its links' clients before the harness stops it, and puts
        # it back before the harness starts it, so no client's traffic is reset or held by the
        # harness in between (harness.stack.links, Interposer.stopping / starting).
        self._before_kill = before_kill
        self._before_start = before_start

    def __repr__(self) -> str:
        return f"Instance({self.name})"

    def _reload(self) -> dict[str, Any]:
        with docker_errors(f"inspecting {self.name}"):
            self._c.reload()
        return self._c.attrs

    def status(self) -> str:
        self._reload()
        return self._c.status

    def kill(self) -> float | None:
        """SIGKILL. Returns when the container died on the monotonic clock (Docker's
        `State.FinishedAt`), which under load is well before the API call returns (1.8 s
        measured on a busy two-core machine); None when Docker does not say."""
        if self._before_kill is not None:
            self._before_kill(self.name)
        with docker_errors(f"killing {self.name}", FaultError):
            self._c.kill(signal="SIGKILL")
        return self.exited_t()

    def exited_t(self) -> float | None:
        """When the container last exited, on CLOCK_MONOTONIC; None while it runs or if unknown."""
        state = self._reload()["State"]
        if state.get("Running"):
            return None
        try:
            died = WallClock().to_mono(parse_rfc3339(state.get("FinishedAt")))
        except ValueError:
            return None
        return died if died <= time.monotonic() else None

    def stop(self, timeout_s: float) -> None:
        if self._before_kill is not None:
            self._before_kill(self.name)
        with docker_errors(f"stopping {self.name}", FaultError):
            self._c.stop(timeout=max(0, int(round(timeout_s))))

    def start(self) -> None:
        if self._before_start is not None:
            self._before_start(self.name)
        with docker_errors(f"starting {self.name}", FaultError):
            self._c.start()

    def pause(self) -> None:
        with docker_errors(f"pausing {self.name}", FaultError):
            self._c.pause()

    def unpause(self) -> None:
        with docker_errors(f"unpausing {self.name}", FaultError):
            self._c.unpause()

    def restart(self, timeout_s: float) -> None:
        """Docker's restart is a stop then a start; done as the two, so the links are taken out
        before the stop and put back before the start (see __init__)."""
        self.stop(timeout_s)
        self.start()

    def wait_status(self, want: set[str], timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status()
            if status in want:
                return status
            if time.monotonic() > deadline:
                raise FaultError(f"{self.name} is {status}, expected {'/'.join(sorted(want))} "
                                 f"within {timeout_s:g} s")
            time.sleep(POLL_S)

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self._reload()["State"]
            health = (state.get("Health") or {}).get("Status")
            if health in (None, "healthy") and state.get("Status") == "running":
                return
            if time.monotonic() > deadline:
                raise FaultError(f"{self.name} not healthy {timeout_s:.0f} s after restart (status {health})")
            time.sleep(0.1)

    def pid(self) -> int:
        return int(self._reload()["State"].get("Pid") or 0)

    def netns(self) -> "Namespace":
        """Its network namespace as it is now, through the run's helper container (never the
        host's nsenter): FaultError when it is not running."""
        if self._netexec is None:
            raise FaultError(f"{self.name}: this stack has no namespace helper")
        return self._netexec.namespace(self._c, self.name)

    def ips(self) -> list[str]:
        nets = self._reload()["NetworkSettings"]["Networks"]
        return sorted(n["IPAddress"] for n in nets.values() if n.get("IPAddress"))

    def exec(self, argv: list[str], timeout_s: float) -> tuple[int, str]:
        """Run `argv` (a list, never a shell string) inside; bounded by `timeout` in the
        container because the SDK's exec has no timeout of its own."""
        if not argv or not all(isinstance(a, str) for a in argv):
            raise StackError(f"exec in {self.name}: the command must be a list of strings")
        with docker_errors(f"exec in {self.name}"):
            code, out = self._c.exec_run(["timeout", str(max(1, int(round(timeout_s)))), *argv], demux=False)
        return int(code if code is not None else -1), (out or b"").decode(errors="replace")

    def run(self, argv: list[str], timeout_s: float) -> tuple[int, str, str]:
        """As `exec`, with standard output and error apart (a read-back parses the output)."""
        if not argv or not all(isinstance(a, str) for a in argv):
            raise StackError(f"exec in {self.name}: the command must be a list of strings")
        with docker_errors(f"exec in {self.name}"):
            code, (out, err) = self._c.exec_run(
                ["timeout", str(max(1, int(round(timeout_s)))), *argv], demux=True)
        return (int(code if code is not None else -1), (out or b"").decode(errors="replace"),
                (err or b"").decode(errors="replace"))

    def copy_out(self, path: str, dest: Path, timeout_s: float) -> int:
        """The regular file at `path` in the container, written to `dest` (through the Docker
        API's get_archive: no exec, works on a stopped container too). Returns its size."""
        return copy_out(self._c, self.name, path, dest, timeout_s)

    def copy_in(self, src: Path, path: str, timeout_s: float) -> None:
        """`src` put into the container at `path` (put_archive; the container may be created
        and not yet started, which is how a restore seeds a fresh instance)."""
        copy_in(self._c, self.name, src, path, timeout_s)

    def host_config(self) -> dict[str, Any]:
        return dict(self._reload()["HostConfig"])

    def update(self, **kw: Any) -> None:
        with docker_errors(f"updating {self.name}", FaultError):
            self._c.update(**kw)

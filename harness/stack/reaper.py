"""The out-of-process reaper: what cleans up when the harness itself is SIGKILLed.

The pattern of testcontainers' Ryuk, as a small host process: the harness starts it, holding
the write end of its stdin. The reaper connects to Docker and acknowledges *before* the harness
creates any object. When its stdin reaches end-of-file (the harness exited, however it died)
it removes every object labelled with the run id and exits. A clean teardown sends "done"
first; the reaper still sweeps, which finds nothing and costs one list call.

The reaper runs in its own session so the Ctrl-C or SIGKILL aimed at the harness's process
group does not take it down with the harness.

It also holds the run's lease (harness.stack.lease): a container kept alive by the reaper's own
connection to the engine, which is how the janitor and `continuum down` of any other job, in
any PID namespace or on any host, tell this live run from an orphan. The lease exists before
the acknowledgement, so no object of the run is ever without it.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time

from harness.errors import StackError
from harness.runid import check_run_id, owner_token

ACK_TIMEOUT_S = 30.0


class Reaper:
    """Context manager owning the reaper process of one run."""

    def __init__(self, run_id: str, owner: str | None = None):
        self.run_id = run_id
        self.owner = owner or owner_token()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Reaper":
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.stack.reaper", self.run_id, self.owner],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], ACK_TIMEOUT_S)
        line = self._proc.stdout.readline() if ready else b""
        if line.strip() != f"ack {self.run_id}".encode():
            self._proc.kill()
            self._proc.wait(timeout=5)
            why = line.decode(errors="replace").strip().removeprefix("error ")
            raise StackError(f"the reaper of run {self.run_id} did not start"
                             f"{': ' + why if why else f' within {ACK_TIMEOUT_S:.0f} s'}")
        return self

    def detach(self) -> None:
        """The stack is meant to outlive us (`continuum up`): tell the reaper to leave it, and
        wait until it has let go of the run's lease (a detached stack has no owner to track)."""
        self._send(b"detach\n")
        if self._proc is not None:
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def __exit__(self, *exc: object) -> None:
        self._send(b"done\n")
        if self._proc is not None:
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def _send(self, msg: bytes) -> None:
        if self._proc is None or self._proc.stdin is None or self._proc.stdin.closed:
            return
        try:
            self._proc.stdin.write(msg)
            self._proc.stdin.flush()
            if msg == b"done\n" or msg == b"detach\n":
                self._proc.stdin.close()
        except OSError:
            pass


def main(argv: list[str]) -> int:
    run_id = check_run_id(argv[0])
    owner = argv[1] if len(argv) > 1 else "unknown"
    # Ignore the terminal's signals: our job is to outlive whatever hit the harness.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    from harness.errors import ContinuumError
    from harness.stack.cleanup import remove_run
    from harness.stack.engine import connect
    from harness.stack.lease import Lease

    try:
        client = connect()
        lease = Lease(client, run_id, owner).acquire()
    except ContinuumError as exc:
        sys.stdout.write(f"error {str(exc).splitlines()[0][:500]}\n")
        sys.stdout.flush()
        return 1
    detached = done = False
    try:
        sys.stdout.write(f"ack {run_id}\n")
        sys.stdout.flush()
    except OSError:             # the harness died while we were starting: sweep at once
        line_source = iter(())
    else:
        line_source = iter(sys.stdin.buffer.readline, b"")
    while True:
        line = next(line_source, b"")
        if not line:
            break
        if line.strip() == b"detach":
            detached = True
            break
        if line.strip() == b"done":
            done = True
            break
    if detached:
        try:
            lease.release()             # a detached stack has no owner to track
        except ContinuumError:
            pass
        return 0
    # Sweep until a sweep finds nothing: a create the harness sent just before it died can
    # complete after the first sweep, and Docker may be busy with half-done removals.
    clean_sweeps = 0
    for attempt in range(10):
        try:
            containers, networks = remove_run(client, run_id)
        except Exception:
            time.sleep(0.5 * (attempt + 1))
            continue
        clean_sweeps = clean_sweeps + 1 if containers == networks == 0 else 0
        if done or clean_sweeps >= 2:    # a clean teardown already removed everything
            return 0
        time.sleep(0.5)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

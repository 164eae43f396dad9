"""`continuum gameday` for real, on the echo target: the operator's console in both modes.

Line mode (stdin piped): an empty line injects the waiting fault, `note TEXT` adds a note,
`abort` aborts. Terminal mode (a real pty, via tmux): single keys, Enter / n / a.
The journal is the witness: what happened, in which order, at which offset.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ROOT, continuum, run_objects

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXP = FIXTURES / "experiments"
HOLD_S = 3.0


def journal(report_dir: Path) -> list[dict]:
    path = report_dir / "latest" / "journal.jsonl"
    out = []
    for line in (path.read_text().splitlines() if path.exists() else []):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def first(report_dir: Path, name: str) -> dict | None:
    return next((e for e in journal(report_dir) if e["event"] == name), None)


class Operator:
    """`continuum gameday` with stdin piped; its output collected line by line."""

    def __init__(self, experiment: Path, report_dir: Path, stdin=subprocess.PIPE):
        self.report_dir = report_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "gameday", str(experiment), "--report-dir", str(report_dir)],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                if any(text in line for line in self.lines):
                    return
                raise AssertionError(f"exited {self.proc.returncode} before {text!r}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} after {timeout_s} s:\n{self.output()}")

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout_s: float = 90) -> int:
        try:
            rc = self.proc.wait(timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(5)
        return rc


def toxiproxy_proxy(docker_client, run_id: str, name: str = "host-web") -> tuple[dict, str]:
    """The run's Toxiproxy's view of a proxy, and the host URL that goes through it."""
    tp = docker_client.containers.get(f"continuum-{run_id}-toxiproxy")
    ports = tp.attrs["NetworkSettings"]["Ports"]
    api = ports["8474/tcp"][0]["HostPort"]
    with urllib.request.urlopen(f"http://127.0.0.1:{api}/proxies/{name}", timeout=5) as resp:
        proxy = json.loads(resp.read())
    listen = proxy["listen"].rsplit(":", 1)[1]
    return proxy, f"http://127.0.0.1:{ports[f'{listen}/tcp'][0]['HostPort']}/"


def test_fault_held_until_operator_and_notes_recorded(tmp_path, docker_client):
    out = tmp_path / "hold"
    op = Operator(EXP / "echo-gameday.yaml", out)  # link-down at 2 s for 1 s, duration 8 s
    try:
        op.wait_for("NEXT  link-down")
        assert first(out, "fault_injected") is None
        op.send("note before the fault")
        time.sleep(HOLD_S)
        assert first(out, "fault_injected") is None, "the fault fired without the operator"
        op.send("")  # go
        op.wait_for("⚡ fault link-down")
        op.send("note after the fault")
        rc = op.finish()
    finally:
        if op.proc.poll() is None:
            op.proc.kill()
    assert rc == 0, op.output()

    evs = journal(out)
    names = [e["event"] for e in evs]
    injected = first(out, "fault_injected")
    # Due at 2 s, held for HOLD_S more after the prompt: injected no earlier than that.
    assert injected["offset_s"] >= 2.0 + HOLD_S, injected
    notes = [e for e in evs if e["event"] == "note"]
    assert [n["text"] for n in notes] == ["before the fault", "after the fault"]
    assert all(n["author"] == "operator" for n in notes)
    assert names.index("note") < names.index("fault_injected") < names.index("fault_reverted")
    # Later offsets shift by the hold: the run lasts its 8 s plus the wait.
    run_end = first(out, "run_end")
    assert run_end["verdict"] == "PASS" and run_end["t_end"] - first(out, "run_start")["t0"] >= 8 + HOLD_S - 0.5

    doc = json.loads((out / "latest" / "results.json").read_text())
    run = doc["runs"][0]
    assert [n["text"] for n in run["notes"]] == ["before the fault", "after the fault"]
    assert run["faults"][0]["injected_s"] >= 2.0 + HOLD_S
    html = (out / "latest" / "report.html").read_text()
    assert "before the fault" in html and "after the fault" in html
    assert run_objects(docker_client, run["run_id"]) == (0, 0)


def test_abort_reverts_fault_tears_down_and_fails(tmp_path, docker_client):
    out = tmp_path / "abort"
    op = Operator(EXP / "echo-gameday-abort.yaml", out)  # link-down at 2 s for 15 s
    try:
        op.wait_for("NEXT  link-down")
        op.send("")
        op.wait_for("⚡ fault link-down")
        run_id = first(out, "run_start")["run_id"]
        # The link really is down: Toxiproxy reports the proxy disabled.
        assert toxiproxy_proxy(docker_client, run_id)[0]["enabled"] is False
        time.sleep(1.0)
        op.send("note pulling the plug")
        op.send("abort")
        rc = op.finish()
    finally:
        if op.proc.poll() is None:
            op.proc.kill()
    # An operator abort is a FAIL (exit 1), like abort_if: the run stopped short of showing
    # the system meets its SLOs. Not ERROR (the harness is fine), not 130 (no signal).
    assert rc == 1, op.output()
    evs = journal(out)
    names = [e["event"] for e in evs]
    assert names.index("fault_injected") < names.index("abort") < names.index("fault_reverted")
    reverted = first(out, "fault_reverted")
    assert reverted["confirmed"] is True and reverted["detail"] == "restored: host-web"
    # Aborted well before the fault's own 15 s window would have ended.
    assert reverted["offset_s"] - first(out, "fault_injected")["offset_s"] < 10
    assert first(out, "abort")["reason"] == "aborted by the operator"
    run = json.loads((out / "latest" / "results.json").read_text())["runs"][0]
    assert run["verdict"] == "FAIL" and run["exit_code"] == 1
    assert run["aborted"] == "aborted by the operator"
    assert any(n["text"] == "pulling the plug" for n in run["notes"])
    assert run_objects(docker_client, run_id) == (0, 0)


def test_closed_input_aborts_instead_of_holding_forever(tmp_path, docker_client):
    """stdin at EOF (e.g. /dev/null under CI): nobody can release the fault, so the run aborts
    when the fault comes due rather than waiting for ever."""
    out = tmp_path / "eof"
    op = Operator(EXP / "echo-gameday.yaml", out, stdin=subprocess.DEVNULL)
    rc = op.finish(120)
    assert rc == 1, op.output()
    assert first(out, "fault_injected") is None
    abort = first(out, "abort")
    assert abort and "input closed" in abort["reason"], journal(out)
    assert run_objects(docker_client, first(out, "run_start")["run_id"]) == (0, 0)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed (apt-get install -y tmux)")
def test_terminal_single_keys_in_tmux(tmp_path, docker_client):
    """A real terminal: Enter injects, `n` + a line adds a note, `a` aborts; prompts visible.
    With --keep the stack outlives the abort, so the restored link can be seen working."""
    out = tmp_path / "tmux"
    session = f"cx-gameday-{tmp_path.name[-12:]}".replace(".", "-")
    cmd = (f"cd {ROOT} && {sys.executable} -m harness gameday {EXP / 'echo-gameday-abort.yaml'} "
           f"--report-dir {out} --keep; echo EXIT=$?; sleep 60")
    tmux = lambda *a: subprocess.run(["tmux", *a], capture_output=True, text=True, timeout=10)  # noqa: E731
    assert tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "60", cmd).returncode == 0

    def pane() -> str:
        return tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session).stdout

    def wait(text: str, timeout_s: float = 90) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            screen = pane()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} on the terminal:\n{pane()}")

    try:
        wait("Enter injects the waiting fault, n adds a note, a aborts")
        wait("NEXT  link-down")
        tmux("send-keys", "-t", session, "Enter")
        wait("⚡ fault link-down")
        tmux("send-keys", "-t", session, "n")
        wait("gameday: note:")
        tmux("send-keys", "-t", session, "-l", "typed on a terminal")
        tmux("send-keys", "-t", session, "Enter")
        wait("noted: typed on a terminal")
        tmux("send-keys", "-t", session, "a")
        screen = wait("EXIT=")
    finally:
        tmux("kill-session", "-t", session)
    assert "aborting: reverting faults" in screen
    assert "EXIT=1" in screen, screen
    names = [e["event"] for e in journal(out)]
    assert names.index("fault_injected") < names.index("note") < names.index("abort") < names.index("fault_reverted")
    run_id = first(out, "run_start")["run_id"]
    try:
        proxy, url = toxiproxy_proxy(docker_client, run_id)
        assert proxy["enabled"] is True and proxy["toxics"] == []
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200
    finally:
        down = continuum("down", run_id, timeout=60)
    assert down.returncode == 0, down.stderr
    assert run_objects(docker_client, run_id) == (0, 0)

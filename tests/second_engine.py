"""A second Docker engine that a test may restart, kill or cut off without touching the shared one.

    with SecondEngine.start(outer_client, images=[...]) as engine:
        engine.docker_host            # "unix:///tmp/.../docker.sock": give it to the harness
        engine.client                 # a DockerClient on it
        engine.run(argv)              # a command in the engine's network namespace
        engine.restart_dockerd()      # stop dockerd; the helper's loop starts it again

What it is: Debian's docker.io in a container (image `continuum-test/engine2`, built from
tests/engine2 on the shared engine the first time, ~80 s; image and container labelled
`io.continuum.owner=hardening-helper`). Not `--privileged`: these machines' own capability
bounding set lacks CAP_SYS_RESOURCE, which privileged asks for, so the helper gets every
capability the machine has, no seccomp/AppArmor confinement, its own cgroup namespace (the
entrypoint remounts the cgroup file systems writable inside it), and a tmpfs for
/var/lib/docker (overlay2 works on it; nothing is left on disk). dockerd's API socket sits in
a host directory bind-mounted into the helper, so the harness and the test reach it as
`unix://...`. Its images (`images=`) are copied in from the shared engine with save/load.

Where processes run: the inner engine publishes ports on 127.0.0.1 *of the helper's network
namespace*, so the harness under test must run there too (load goes to 127.0.0.1, as
everywhere). `run()` starts a host process inside that namespace with `nsenter --net`: the
host's files, Python and venv, the helper's loopback. Nothing else of the host is shared with
the inner engine: its bridges and iptables rules live in the helper's namespace, its address
pools (10.214/24, 10.215/16) are away from the shared engine's (10.213/16 here).

Startup cost, measured on the 2-core machines: image build ~80 s once; helper start until the
inner API answers ~3-6 s; copying the echo target's images in ~15-30 s (first time per helper).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = ROOT / "tests" / "engine2"
IMAGE = "continuum-test/engine2:latest"
OWNER = {"io.continuum.owner": "hardening-helper"}
HASH_LABEL = "io.continuum.context-hash"
READY_TIMEOUT_S = 60


def _context_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(CONTEXT.iterdir()):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


# Docker's names for the capabilities, by number (as in linux/capability.h).
_CAPS = ("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
         "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
         "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
         "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
         "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ").split()


def _bounding_capabilities() -> list[str]:
    """Every capability this machine can grant (its bounding set), by Docker's names."""
    with open("/proc/self/status", encoding="ascii") as f:
        bnd = int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)
    return [name for i, name in enumerate(_CAPS) if bnd >> i & 1]


def ensure_image(outer: docker.DockerClient) -> float:
    """Build the helper image if it is missing or its context changed; seconds spent."""
    t = time.monotonic()
    want = _context_hash()
    try:
        if outer.images.get(IMAGE).labels.get(HASH_LABEL) == want:
            return 0.0
    except docker.errors.ImageNotFound:
        pass
    outer.images.build(path=str(CONTEXT), tag=IMAGE, rm=True, forcerm=True,
                       labels={**OWNER, HASH_LABEL: want}, timeout=1800)
    return time.monotonic() - t


class SecondEngine:
    def __init__(self, outer: docker.DockerClient, container, sock_dir: Path):
        self.outer = outer
        self.container = container
        self.sock_dir = sock_dir
        self.docker_host = f"unix://{sock_dir / 'docker.sock'}"
        self.client = docker.DockerClient(base_url=self.docker_host, timeout=30, version="1.41")
        self.timings: dict[str, float] = {}
        self.tls_env: dict[str, str] | None = None
        self.ssh_env: dict[str, str] | None = None

    # ─────────────────────────────── life ───────────────────────────────

    @classmethod
    def sweep(cls, outer: docker.DockerClient) -> int:
        """Remove second engines whose test process is gone (a pytest killed by a timeout never
        ran its fixture's teardown); their names carry that process's pid. Returns how many."""
        removed = 0
        for c in outer.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in OWNER.items()]}):
            parts = c.name.split("-")
            if len(parts) >= 2 and parts[-2].isdigit() and not Path(f"/proc/{parts[-2]}").exists():
                try:
                    c.remove(force=True, v=True)
                    removed += 1
                except docker.errors.NotFound:
                    pass
        return removed

    @classmethod
    def start(cls, outer: docker.DockerClient, images: list[str] = ()) -> "SecondEngine":
        t0 = time.monotonic()
        cls.sweep(outer)
        built_s = ensure_image(outer)
        sock_dir = Path(tempfile.mkdtemp(prefix="continuum-engine2-"))
        os.chmod(sock_dir, 0o700)
        container = outer.containers.run(
            IMAGE, detach=True, labels=OWNER, name=f"hardening-helper-engine2-{os.getpid()}-{int(t0)}",
            cap_add=_bounding_capabilities(), cgroupns="private",
            security_opt=["apparmor=unconfined", "seccomp=unconfined"],
            volumes={str(sock_dir): {"bind": "/run/engine2", "mode": "rw"}},
            tmpfs={"/var/lib/docker": "", "/run/docker": ""})
        engine = cls(outer, container, sock_dir)
        engine.timings["image_build_s"] = built_s
        try:
            engine.wait_ready()
            engine.timings["ready_s"] = time.monotonic() - t0 - built_s
            t = time.monotonic()
            if images:
                engine.copy_images(images)
            engine.timings["images_s"] = time.monotonic() - t
        except BaseException:
            engine.close()
            raise
        return engine

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        t = time.monotonic()
        deadline = t + timeout_s
        while True:
            try:
                self.client.ping()
                return time.monotonic() - t
            except Exception:  # noqa: BLE001 - any failure means not yet
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the second engine did not answer in {timeout_s:.0f} s:\n{self.dockerd_log()}")
                time.sleep(0.2)

    def copy_images(self, names: list[str]) -> None:
        """save on the shared engine → load on this one, streamed (one tar: shared layers once)."""
        api = self.outer.api
        res = api._get(api._url("/images/get"), params={"names": list(names)}, stream=True, timeout=600)
        api._raise_for_status(res)
        for _ in self.client.api.load_image(res.iter_content(1 << 20)):
            pass

    def close(self) -> None:
        if self.ssh_env is not None:    # the shared SSH connection: ended, not left to linger
            subprocess.run(["ssh", "-F", str(self.sock_dir / "ssh" / "config"), "-O", "exit",
                            self.ssh_env["DOCKER_HOST"].split("@", 1)[1]],
                           capture_output=True, timeout=10, check=False)
        try:
            (self.sock_dir / "stop").touch()
        except OSError:
            pass
        try:
            self.container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    def __enter__(self) -> "SecondEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ─────────────────────────────── using it ───────────────────────────────

    def netns_pid(self) -> int:
        self.container.reload()
        return int(self.container.attrs["State"]["Pid"])

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.docker_host}

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        """A host process inside the engine's network namespace, DOCKER_HOST pointing at it."""
        return subprocess.Popen(["nsenter", f"--net=/proc/{self.netns_pid()}/ns/net", "--", *argv],
                                env=self.env(), **kw)

    def restart_dockerd(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Stop dockerd (SIGTERM, as a service manager would); the helper's loop starts it again.
        Returns the seconds until the API answered again."""
        t = time.monotonic()
        pid = (self.sock_dir / "dockerd.pid").read_text().strip()
        self.container.exec_run(["kill", "-TERM", pid])
        deadline = time.monotonic() + timeout_s
        while (self.sock_dir / "dockerd.pid").exists() and \
                (self.sock_dir / "dockerd.pid").read_text().strip() == pid:
            if time.monotonic() > deadline:
                raise RuntimeError("dockerd did not stop")
            time.sleep(0.05)
        self.wait_ready(timeout_s)
        return time.monotonic() - t

    def enable_tls(self) -> dict[str, str]:
        """Serve the API over TCP with mutual TLS too, as a remote engine does: a CA, a server
        certificate for this helper's address and a client certificate (openssl, argument lists
        only), then dockerd restarted with `--tlsverify`. Returns the environment a user of a
        remote engine sets (DOCKER_HOST=tcp://ADDRESS:2376, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH).
        Idempotent."""
        if self.tls_env is not None:
            return self.tls_env
        self.container.reload()
        ip = next(iter(self.container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        tls, client_dir = self.sock_dir / "tls", self.sock_dir / "client"
        tls.mkdir(exist_ok=True)
        client_dir.mkdir(exist_ok=True)

        def ssl(*argv: str) -> None:
            subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)

        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=continuum-test-ca",
            "-keyout", str(tls / "ca-key.pem"), "-out", str(tls / "ca.pem"))
        for name, subject, ext in (("server", f"/CN={ip}", f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth"),
                                   ("client", "/CN=continuum-harness", "extendedKeyUsage=clientAuth")):
            ext_file = tls / f"{name}.ext"
            ext_file.write_text(ext + "\n")
            ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                "-keyout", str(tls / f"{name}-key.pem"), "-out", str(tls / f"{name}.csr"))
            ssl("x509", "-req", "-days", "1", "-in", str(tls / f"{name}.csr"), "-CA", str(tls / "ca.pem"),
                "-CAkey", str(tls / "ca-key.pem"), "-CAcreateserial", "-extfile", str(ext_file),
                "-out", str(tls / f"{name}-cert.pem"))
        # DOCKER_CERT_PATH's layout: ca.pem, cert.pem, key.pem.
        shutil.copy(tls / "ca.pem", client_dir / "ca.pem")
        shutil.copy(tls / "client-cert.pem", client_dir / "cert.pem")
        shutil.copy(tls / "client-key.pem", client_dir / "key.pem")
        self.restart_dockerd()
        self.tls_env = {"DOCKER_HOST": f"tcp://{ip}:2376", "DOCKER_TLS_VERIFY": "1",
                        "DOCKER_CERT_PATH": str(client_dir)}
        return self.tls_env

    def enable_ssh(self) -> dict[str, str]:
        """Serve the engine over SSH, as `DOCKER_HOST=ssh://root@ADDRESS` reaches a remote host:
        sshd in this helper with a key made for the test (ssh-keygen, argument lists only), the
        default socket path pointing at this engine's socket (the remote `docker system
        dial-stdio` dials it). Returns the environment a user sets: DOCKER_HOST, and PATH with an
        `ssh` first that adds this test's client config (key, no host-key prompt), the one thing
        a user has in ~/.ssh/config instead. Idempotent."""
        if self.ssh_env is not None:
            return self.ssh_env
        self.container.reload()
        ip = next(iter(self.container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        d = self.sock_dir / "ssh"
        d.mkdir(exist_ok=True)
        key = d / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True,
                       capture_output=True, timeout=60)
        for argv in (["mkdir", "-p", "-m", "700", "/root/.ssh", "/run/sshd"],
                     ["cp", "/run/engine2/ssh/id_ed25519.pub", "/root/.ssh/authorized_keys"],
                     ["ssh-keygen", "-A"],
                     ["ln", "-sf", "/run/engine2/docker.sock", "/var/run/docker.sock"],
                     ["/usr/sbin/sshd", "-o", "PasswordAuthentication=no", "-o", "PermitRootLogin=prohibit-password"]):
            code, out = self.container.exec_run(argv)
            assert code == 0, f"{' '.join(argv)} in the second engine: exit {code}: {out.decode()[-500:]}"
        (d / "config").write_text(
            f"Host {ip}\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
            "  ConnectTimeout 10\n"
            # One connection shared by every API call, as the docker docs advise for ssh://
            # engines: the SDK opens a new `ssh` per connection, and each handshake costs.
            f"  ControlMaster auto\n  ControlPath {d}/cm-%C\n  ControlPersist 120\n")
        bin_dir = d / "bin"
        bin_dir.mkdir(exist_ok=True)
        wrapper = bin_dir / "ssh"
        wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('ssh')} -F {d / 'config'} \"$@\"\n")
        wrapper.chmod(0o755)
        self.ssh_env = {"DOCKER_HOST": f"ssh://root@{ip}", "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
        return self.ssh_env

    def tls_client(self) -> docker.DockerClient:
        """A client of the TLS endpoint, built from the environment as the harness builds its own."""
        from harness.errors import DockerUnavailable
        from harness.stack.engine import connect

        environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")} | self.enable_tls()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:     # dockerd opens its TCP listener a moment after its socket
            try:
                return connect(environ=environ)
            except DockerUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def dockerd_log(self) -> str:
        try:
            return (self.sock_dir / "dockerd.log").read_text()[-3000:]
        except OSError:
            return "(no dockerd log)"

    def run_objects(self, run_id: str) -> tuple[int, int]:
        f = {"label": f"io.continuum.run-id={run_id}"}
        return len(self.client.api.containers(all=True, filters=f)), len(self.client.api.networks(filters=f))

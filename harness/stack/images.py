"""Make sure every image a target and the harness need exists locally, online or offline.

Online, official images are pulled. With no registry (air-gapped CI agents, this project's own
machines) they are built under the same names: the Debian base by debootstrap from the
machine's own apt mirror, Toxiproxy from its Go module. Target images are then built from
their Dockerfiles (`FROM debian:bookworm-slim`), so one Dockerfile serves both worlds.

A warm run is a few list calls: target images carry a hash of their build context as a label,
and an image whose hash matches is not rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import docker
from docker.errors import APIError, BuildError, DockerException, ImageNotFound

from harness.errors import ImageError
from harness.stack.engine import connect
from harness.model.target import Target

log = logging.getLogger(__name__)

BASE_IMAGE = "debian:bookworm-slim"
TOXIPROXY_VERSION = "2.12.0"
TOXIPROXY_IMAGE = f"ghcr.io/shopify/toxiproxy:{TOXIPROXY_VERSION}"
TOXIPROXY_MODULE = f"github.com/Shopify/toxiproxy/v2/cmd/server@v{TOXIPROXY_VERSION}"
HASH_LABEL = "io.continuum.context-hash"

# The namespace helper (harness.stack.netexec): Debian's iptables and a fixed request loop.
# Its tag is the hash of what builds it, so two versions of the harness never fight over it.
NETEXEC_SCRIPT = r"""#!/bin/bash
# continuum-netexec: the harness's hands in one container's network namespace.
# Requests on stdin, one per line; what follows "r " is data, appended to a file that
# iptables-restore reads; nothing read here is ever evaluated.
#   r LINE   add LINE to the pending iptables-restore batch
#   apply    iptables-restore --noflush the batch: "ok <epoch seconds>" or "err <message>"
#   save     iptables-save of every table, then a line "."
set -u
export LC_ALL=C             # EPOCHREALTIME with a dot
batch=/tmp/continuum.batch
: >"$batch"
while IFS= read -r req; do
  case "$req" in
    "r "*) printf '%s\n' "${req#r }" >>"$batch" ;;
    apply)
      if out=$(iptables-restore -w 5 --noflush "$batch" 2>&1); then
        echo "ok $EPOCHREALTIME"   # bash's clock: no process started for it
      else
        printf 'err %s\n' "$(printf '%s' "$out" | tr '\n' ' ')"
      fi
      : >"$batch" ;;
    save) iptables-save 2>&1; echo . ;;
    *) echo "err unknown request" ;;
  esac
done
"""
NETEXEC_DOCKERFILE = (
    f"FROM {BASE_IMAGE}\n"
    "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
    "--no-install-recommends iptables >/dev/null && rm -rf /var/lib/apt/lists/*\n"
    "COPY continuum-netexec /usr/local/bin/continuum-netexec\n"
    'ENTRYPOINT ["/usr/local/bin/continuum-netexec"]\n'
)
NETEXEC_IMAGE = "continuum/netexec:" + hashlib.sha256(
    (NETEXEC_DOCKERFILE + NETEXEC_SCRIPT).encode()).hexdigest()[:12]
PULL_TIMEOUT_S = 20
BUILD_TIMEOUT_S = 1800


@dataclass(frozen=True)
class ImageStatus:
    name: str
    action: str        # "present", "pulled", "built", "rebuilt"
    seconds: float


def _exists(client: docker.DockerClient, name: str) -> docker.models.images.Image | None:
    try:
        return client.images.get(name)
    except ImageNotFound:
        return None


def _try_pull(name: str) -> bool:
    repo, _, tag = name.rpartition(":")
    try:
        connect(PULL_TIMEOUT_S).images.pull(repo, tag=tag)
        return True
    except (DockerException, OSError) as exc:
        log.info("pull of %s failed (%s); building it locally", name, str(exc).splitlines()[0][:120])
        return False


def apt_mirror(sources_root: Path = Path("/etc/apt")) -> str:
    """The machine's Debian mirror, read from its apt sources (deb822 or one-line format)."""
    candidates: list[tuple[str, str]] = []  # (uri, suites)
    for path in sorted((sources_root / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (line.partition(":") for line in stanza.splitlines() if ":" in line and not line.startswith("#"))
            )
            if fields.get("types", "").split()[:1] == ["deb"] and "uris" in fields:
                candidates.append((fields["uris"].split()[0], fields.get("suites", "")))
    one_line = [sources_root / "sources.list", *sorted((sources_root / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            for line in path.read_text().splitlines():
                m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m:
                    candidates.append((m.group(1), m.group(2)))
    for uri, suites in candidates:
        if "bookworm" in suites.split() and "security" not in uri:
            return uri
    for uri, suites in candidates:
        if "debian" in uri and "security" not in uri:
            return uri
    raise ImageError(f"no Debian mirror found in {sources_root}/sources.list*; cannot debootstrap {BASE_IMAGE}")


def _run(argv: list[str], what: str, timeout_s: float, **kw) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, **kw)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"{what} failed: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ImageError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))


def build_base(client: docker.DockerClient) -> None:
    if shutil.which("debootstrap") is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            log.warning("installing debootstrap (apt-get) to build %s", BASE_IMAGE)
            try:
                _run(["apt-get", "install", "-y", "-qq", "debootstrap"], "apt-get install debootstrap", 600)
            except ImageError:  # a fresh machine may have no package lists yet
                _run(["apt-get", "update", "-qq"], "apt-get update", 600)
                _run(["apt-get", "install", "-y", "-qq", "debootstrap"], "apt-get install debootstrap", 600)
        else:
            raise ImageError(f"no registry answers and debootstrap is missing: install it to build {BASE_IMAGE}")
    mirror = apt_mirror()
    with tempfile.TemporaryDirectory(prefix="continuum-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror], f"debootstrap from {mirror}", 1200)
        tarball = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], "tar of the rootfs", 300)
        repo, _, tag = BASE_IMAGE.partition(":")
        try:
            connect(BUILD_TIMEOUT_S).api.import_image(src=str(tarball), repository=repo, tag=tag)
        except DockerException as exc:
            raise ImageError(f"docker import of {BASE_IMAGE} failed: {exc}") from exc


def build_toxiproxy(client: docker.DockerClient) -> None:
    if shutil.which("go") is None:
        raise ImageError(f"no registry answers and Go is missing: install Go to build {TOXIPROXY_IMAGE}")
    with tempfile.TemporaryDirectory(prefix="continuum-toxiproxy-") as tmp:
        env = {**os.environ, "GOBIN": tmp, "CGO_ENABLED": "0"}
        # -X sets the version the API reports, as the official build does ("git" otherwise).
        ldflags = f"-ldflags=-s -w -X github.com/Shopify/toxiproxy/v2.Version={TOXIPROXY_VERSION}"
        _run(["go", "install", ldflags, TOXIPROXY_MODULE], f"go install {TOXIPROXY_MODULE}", 900, env=env)
        os.rename(Path(tmp) / "server", Path(tmp) / "toxiproxy")
        # A static binary needs nothing else: the image is the binary alone, like the official one.
        (Path(tmp) / "Dockerfile").write_text(
            'FROM scratch\nCOPY toxiproxy /toxiproxy\nEXPOSE 8474\n'
            'ENTRYPOINT ["/toxiproxy"]\nCMD ["-host=0.0.0.0", "-port=8474"]\n'
        )
        _build(client, Path(tmp), "Dockerfile", TOXIPROXY_IMAGE, {})


def build_netexec(client: docker.DockerClient) -> None:
    with tempfile.TemporaryDirectory(prefix="continuum-netexec-") as tmp:
        script = Path(tmp) / "continuum-netexec"
        script.write_text(NETEXEC_SCRIPT)
        script.chmod(0o755)
        (Path(tmp) / "Dockerfile").write_text(NETEXEC_DOCKERFILE)
        _build(client, Path(tmp), "Dockerfile", NETEXEC_IMAGE, {})


def _build(client: docker.DockerClient, context: Path, dockerfile: str, tag: str, labels: dict[str, str],
           buildargs: dict[str, str] | None = None, target: str | None = None) -> None:
    try:
        builder = connect(BUILD_TIMEOUT_S)       # the run's engine (contexts, ssh), a build's timeout
        builder.images.build(path=str(context), dockerfile=dockerfile, tag=tag, rm=True, forcerm=True, labels=labels,
                             buildargs=buildargs or None, target=target)
    except BuildError as exc:
        tail = [str(line.get("stream", line.get("error", ""))).strip() for line in exc.build_log][-6:]
        raise ImageError(f"building {tag} from {context} failed: {exc.msg} | " + " | ".join(t for t in tail if t)) from exc
    except (APIError, DockerException) as exc:
        raise ImageError(f"building {tag} from {context} failed: {exc}") from exc


def context_hash(context: Path, dockerfile: str, extra: str = "") -> str:
    """Hash of every file in the build context (names, modes and contents), and of `extra`
    (build arguments and target: a change to them is a new image too)."""
    h = hashlib.sha256(dockerfile.encode() + (b"\0" + extra.encode() if extra else b""))
    for path in sorted(p for p in context.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(context)).encode())
        h.update(oct(path.stat().st_mode & 0o777).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def ensure_images(
    client: docker.DockerClient,
    targets: Iterable[Target],
    overrides: dict[str, str] | None = None,
    say: Callable[[str], None] = log.info,
) -> list[ImageStatus]:
    """Pull or build what is missing; rebuild target images whose context changed."""
    import time

    statuses: list[ImageStatus] = []
    registry: bool | None = None  # learned from the first pull attempt

    for name, builder in ((BASE_IMAGE, build_base), (TOXIPROXY_IMAGE, build_toxiproxy)):
        t = time.monotonic()
        if _exists(client, name):
            statuses.append(ImageStatus(name, "present", time.monotonic() - t))
            continue
        if registry is not False:
            say(f"pulling {name}")
            registry = _try_pull(name)
            if registry:
                statuses.append(ImageStatus(name, "pulled", time.monotonic() - t))
                continue
        say(f"no registry answers: building {name} locally")
        builder(client)
        statuses.append(ImageStatus(name, "built", time.monotonic() - t))
    t = time.monotonic()
    if _exists(client, NETEXEC_IMAGE):                  # ours: never pulled, built on the base
        statuses.append(ImageStatus(NETEXEC_IMAGE, "present", time.monotonic() - t))
    else:
        say(f"building {NETEXEC_IMAGE} (the namespace helper)")
        build_netexec(client)
        statuses.append(ImageStatus(NETEXEC_IMAGE, "built", time.monotonic() - t))

    overrides = overrides or {}
    seen: set[str] = set()
    for target in targets:
        for svc in target.services:
            if svc.name in overrides or svc.image in seen:
                continue
            seen.add(svc.image)
            t = time.monotonic()
            if svc.build is None:
                if not _exists(client, svc.image):
                    if not _try_pull(svc.image):
                        raise ImageError(
                            f"image {svc.image} of service {svc.name} is not here, cannot be pulled and has no build:"
                        )
                    statuses.append(ImageStatus(svc.image, "pulled", time.monotonic() - t))
                else:
                    statuses.append(ImageStatus(svc.image, "present", time.monotonic() - t))
                continue
            extra = repr((svc.build.args, svc.build.target)) if svc.build.args or svc.build.target else ""
            digest = context_hash(svc.build.context, svc.build.dockerfile, extra)
            image = _exists(client, svc.image)
            if image is not None and (image.labels or {}).get(HASH_LABEL) == digest:
                statuses.append(ImageStatus(svc.image, "present", time.monotonic() - t))
                continue
            say(f"building {svc.image} from {svc.build.context}")
            _build(client, svc.build.context, svc.build.dockerfile, svc.image, {HASH_LABEL: digest},
                   dict(svc.build.args), svc.build.target)
            statuses.append(ImageStatus(svc.image, "rebuilt" if image else "built", time.monotonic() - t))
    for svc_name, image in overrides.items():
        if not _exists(client, image):
            raise ImageError(f"override image {image} for service {svc_name} is not present locally")
    return statuses

#!/usr/bin/env bash
# Make sure a Docker engine answers. On Debian as root with none running, install Debian's
# docker.io and start dockerd in the background; anywhere else, say how to get one and stop.
# Why a script and not Python: it must work before the virtual environment exists.
set -euo pipefail

say() { printf 'continuum: %s\n' "$*" >&2; }

if timeout 10 docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  say "no Docker engine answers and this is not Debian as root, so I will not install one."
  say "Install Docker (https://docs.docker.com/engine/install/), start it, and check with 'docker info'."
  exit 3
fi

if ! command -v dockerd >/dev/null 2>&1; then
  say "no Docker engine: installing Debian's docker.io (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables >/dev/null
fi
if ! command -v docker >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-cli >/dev/null || true
fi

say "starting dockerd in the background (log: /var/log/continuum-dockerd.log)"
# A wider address pool than Docker's default (about 30 networks) because each run creates one
# network per interposed link; two concurrent runs of the reference target need about 20.
nohup dockerd --default-address-pool base=10.213.0.0/16,size=24 \
  >/var/log/continuum-dockerd.log 2>&1 &

for _ in $(seq 1 60); do
  if timeout 5 docker info >/dev/null 2>&1; then
    say "Docker engine is up ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 1
done
say "dockerd did not answer within 60 s; see /var/log/continuum-dockerd.log"
exit 3

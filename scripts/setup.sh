#!/usr/bin/env bash
# Everything a fresh machine needs before Continuum can run: a Python virtual environment with
# the project installed, a Docker engine, and every image (pulled, or built offline).
# Idempotent and quick when nothing changed. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
PY=${PYTHON:-python3}

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "Python 3.11 or newer is needed (found: $("$PY" --version 2>&1))"; exit 3
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.continuum-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing the project and its dependencies into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi

bash scripts/engine.sh

if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  # The HTML report is tested in a real headless browser.
  if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    say "installing Debian's chromium for the report's browser test"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
  fi
fi

say "making sure every image exists (pull, or build offline)"
.venv/bin/continuum images targets/reference targets/reference-fragile targets/echo targets/patroni targets/rabbitmq targets/etcd
# The reference app's version 2 (experiments/drills/*upgrade*): same context, APP_VERSION=2; every layer but the last is v1's.
docker build -q --build-arg APP_VERSION=2 -t continuum/reference-app:v2 targets/reference/app >/dev/null

#!/usr/bin/env bash
# setup.sh - install what the demo and the tests need on a fresh Debian machine, then the project
# itself into .venv. Idempotent: installs only what is missing.
#   system: redis-server and redis-cli (the tests also run Redis as Sentinel and as a Cluster), nginx,
#           curl, unzip, bc, a JDK >= 17 (Keycloak), maven (Keycloak download),
#           chromium (end-to-end tests; Playwright drives Debian's, it never downloads a browser)
#   python: .venv with the project and its test extras
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)   # redis-cli: the tests' Sentinel and Cluster
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
command -v unzip >/dev/null || need+=(unzip)
command -v bc >/dev/null || need+=(bc)
command -v mvn >/dev/null || need+=(maven)
[ -x /usr/bin/chromium ] || need+=(chromium)   # the end-to-end tests drive it with Playwright
if ! command -v java >/dev/null; then need+=(openjdk-17-jre-headless); fi
if [ "${#need[@]}" -gt 0 ]; then
  say "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# nginx and redis from Debian start services on install where systemd runs; we start our own.

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import proxy, pytest_aiohttp' 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  say "installing the project into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi

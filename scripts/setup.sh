#!/usr/bin/env bash
# setup.sh - install what the demo and the tests need on a fresh Debian machine, then the project
# itself into .venv. Idempotent: installs only what is missing.
#   system: redis-server and redis-cli (the tests also run Redis as Sentinel and as a Cluster), nginx,
#           curl, unzip, bc, a JDK >= 17 (Keycloak), maven (Keycloak download),
#           chromium (end-to-end tests; Playwright drives Debian's, it never downloads a browser)
#   python: .venv with exactly the locked versions (requirements/requirements-test.lock) and the project
#   go:     the second test provider, zitadel/oidc's example OP, built once into ~/.cache/auth-proxy/zitadel-op
#           (scripts/zitadel-op.sh build; needs Go >= 1.24, which Debian's golang-go is not: not installed here)
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

# Python: exactly what requirements/requirements-test.lock names, with its hashes (scripts/lock.sh writes it), so
# a fresh machine runs what CI tested. A changed lock makes a new .venv: nothing stays behind from an
# older one. LOCK=requirements/requirements-bench.lock adds the benchmark charts' packages.
PY=${PYTHON:-python3}
LOCK=${LOCK:-requirements/requirements-test.lock}
stamp="$(sha256sum "$LOCK" pyproject.toml | sha256sum | cut -c1-16) $LOCK"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.installed 2>/dev/null)" != "$stamp" ]; then
  say "installing $LOCK into a new .venv"
  rm -rf .venv
  "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes --no-deps -r "$LOCK"
  # The project itself, editable, built by the locked setuptools: nothing fetched here.
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  .venv/bin/pip check >/dev/null || { .venv/bin/pip check >&2; exit 1; }
  echo "$stamp" >.venv/.installed
fi

# The second OpenID provider of the tests (tests/integration/test_zitadel_op.py): built from the Go
# module proxy once per version (~50 s cold, nothing when cached). SKIP_ZITADEL_OP=1 skips it (the demo).
if [ "${SKIP_ZITADEL_OP:-0}" != 1 ]; then
  if command -v go >/dev/null; then
    bash scripts/zitadel-op.sh build >/dev/null
  else
    say "go not found: the zitadel OP tests will fail until Go (>= 1.24) is installed"
  fi
fi

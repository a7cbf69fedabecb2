#!/usr/bin/env bash
# lock.sh - write the dependency locks from pyproject.toml's ranges, with hashes (uv pip compile).
#
#   scripts/lock.sh             re-lock after a change to pyproject.toml: versions already locked stay
#   scripts/lock.sh --upgrade   every package to the newest version the ranges allow, then the whole
#                               test suite on exactly that (scripts/test.sh), and a table of what moved
#   scripts/lock.sh --upgrade-package NAME   one package (repeatable), likewise tested
#
# The locks (requirements/requirements-*.lock) are what every install reads: scripts/setup.sh (tests, demo), the
# Dockerfile (runtime.lock) and bench (bench.lock). All three resolve to the same versions: runtime and
# bench are constrained by test.lock. Python 3.11 on Linux, the version CI and the image run; every
# wheel's hash is kept, so other architectures (arm64 images) install from the same lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[lock] %s\n' "$*" >&2; }
upgrade=()
testing=0
while [ $# -gt 0 ]; do
  case "$1" in
    --upgrade) upgrade+=(--upgrade); testing=1 ;;
    --upgrade-package) upgrade+=(--upgrade-package "$2"); testing=1; shift ;;
    *) say "unknown argument $1 (see the comment at the top of this file)"; exit 2 ;;
  esac
  shift
done

# uv, from its own lock, in a venv of its own (never the project's).
TOOLS=.venv-tools
tools_stamp=$(sha256sum requirements/requirements-tools.lock | cut -c1-16)
if ! "$TOOLS/bin/uv" --version >/dev/null 2>&1 || [ "$(cat "$TOOLS/.installed" 2>/dev/null)" != "$tools_stamp" ]; then
  say "installing uv into $TOOLS from requirements/requirements-tools.lock"
  rm -rf "$TOOLS"
  "${PYTHON:-python3}" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q --require-hashes --no-deps -r requirements/requirements-tools.lock
  echo "$tools_stamp" >"$TOOLS/.installed"
fi
UV="$TOOLS/bin/uv"

before=$(mktemp)
trap 'rm -f "$before"' EXIT
pins() { grep -E '^[A-Za-z0-9_.-]+==' "$1" | sed -E 's/[ ;].*//' | sort; }
[ -f requirements/requirements-test.lock ] && pins requirements/requirements-test.lock >"$before"

compile() {  # compile OUT [args...]
  local out=$1; shift
  "$UV" pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux \
    --no-strip-markers --custom-compile-command "scripts/lock.sh" -o "$out" "$@"
}
compile requirements/requirements-test.lock pyproject.toml requirements/build.in --extra test "${upgrade[@]}"
compile requirements/requirements-runtime.lock pyproject.toml -c requirements/requirements-test.lock
compile requirements/requirements-bench.lock pyproject.toml requirements/build.in --extra test --extra bench \
  -c requirements/requirements-test.lock
compile requirements/requirements-build.lock requirements/build.in -c requirements/requirements-test.lock
compile requirements/requirements-tools.lock requirements/tools.in "${upgrade[@]}"

say "what moved in requirements/requirements-test.lock:"
moved=$(pins requirements/requirements-test.lock | diff "$before" - | grep -E '^[<>]' || true)
printf '%s\n' "${moved:-  nothing}" >&2

if [ "$testing" = 1 ]; then
  say "running the whole suite on the new lock (scripts/test.sh)"
  bash scripts/test.sh -q
  say "green: commit requirements/ with the table above in the message"
fi

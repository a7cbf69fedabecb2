#!/usr/bin/env bash
# zitadel-op.sh - a second, non-Keycloak OpenID provider for the tests: the example OP of the Go
# library zitadel/oidc (github.com/zitadel/oidc/v3/example/server), built once from the Go module proxy
# with `go install` and started on 127.0.0.1-reachable ports. See docs/providers.md (zitadel/oidc's example OP).
#
#   scripts/zitadel-op.sh build    build once into the cache (no-op when the binary is there); prints its path
#   scripts/zitadel-op.sh start    idempotent: build if needed, start on ZO_PORT, wait for discovery;
#                                  prints the issuer (http://localhost:PORT/) on stdout
#   scripts/zitadel-op.sh stop     stop the OP started for ZO_PORT and wait until it has exited
#   scripts/zitadel-op.sh status   exit 0 (and print the issuer) if it is up, 1 if not
#
# Environment (all optional):
#   ZO_PORT=18100            HTTP port. The example binds every interface (":PORT", not configurable):
#                            it is a test fixture with published passwords, keep it on test machines.
#   ZO_VERSION=v3.52.0       module version of github.com/zitadel/oidc/v3
#   ZO_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/auth-proxy/zitadel-op   the built binary (one per version)
#   ZO_HOME=$ZO_CACHE/run-$ZO_PORT    per-port state: pid file, log
#   ZO_REDIRECT_URI=http://127.0.0.1:4180/oauth/callback   the `web` client's redirect URIs, comma-separated
#                            (exact match: the example registers no wildcards)
#   ZO_USERS_FILE=<repo>/config/zitadel-op-users.json      its users (else the example's two built-in ones)
#   ZO_WAIT=30               seconds to wait for the discovery document
#
# The OP keeps everything in memory: a restart forgets every session, token and signing key.
# Linux only (setsid, flock, /proc). Requires bash >= 5, curl, and Go (>= 1.24) for the first build.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ZO_PORT=${ZO_PORT:-18100}
ZO_VERSION=${ZO_VERSION:-v3.52.0}
ZO_CACHE=${ZO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/auth-proxy/zitadel-op}
ZO_HOME=${ZO_HOME:-$ZO_CACHE/run-$ZO_PORT}
ZO_REDIRECT_URI=${ZO_REDIRECT_URI:-http://127.0.0.1:4180/oauth/callback}
ZO_USERS_FILE=${ZO_USERS_FILE:-$REPO_ROOT/config/zitadel-op-users.json}
ZO_WAIT=${ZO_WAIT:-30}

MODULE=github.com/zitadel/oidc/v3/example/server
BIN_DIR="$ZO_CACHE/$ZO_VERSION"
BIN="$BIN_DIR/server"
ISSUER="http://localhost:$ZO_PORT/"
DISCOVERY="${ISSUER}.well-known/openid-configuration"
PIDFILE="$ZO_HOME/op.pid"
LOG="$ZO_HOME/op.log"

say() { printf '[zitadel-op.sh] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true; }

running_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 0
  pid=$(cat "$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  # guard against a recycled pid: the process must be our binary
  if kill -0 "$pid" 2>/dev/null && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$BIN" ]; then
    echo "$pid"
  fi
}

cmd_build() {
  mkdir -p "$ZO_CACHE"
  # one build at a time (parallel test runs share the cache)
  exec 8>"$ZO_CACHE/.build.lock"
  flock 8
  if [ ! -x "$BIN" ]; then
    command -v go >/dev/null 2>&1 || die "go not found: install Go (>= 1.24) to build the zitadel/oidc example OP"
    local tmp t0=$SECONDS
    tmp=$(mktemp -d "$ZO_CACHE/build.XXXXXX")
    say "go install $MODULE@$ZO_VERSION (once per version)"
    if ! GOBIN="$tmp" GOFLAGS=-mod=mod go install "$MODULE@$ZO_VERSION" >"$tmp/build.log" 2>&1; then
      tail -20 "$tmp/build.log" >&2
      rm -rf "$tmp"
      die "go install $MODULE@$ZO_VERSION failed"
    fi
    mkdir -p "$BIN_DIR"
    mv "$tmp/server" "$BIN"
    rm -rf "$tmp"
    say "built $BIN in $((SECONDS - t0))s"
  fi
  exec 8>&-
  echo "$BIN"
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + ZO_WAIT))
  until [ "$(http_code "$DISCOVERY")" = 200 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "the OP exited; last lines of $LOG:"
      tail -20 "$LOG" >&2
      exit 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "not ready after ${ZO_WAIT}s (pid $pid; log: $LOG)"
    sleep 0.1
  done
}

cmd_start() {
  cmd_build >/dev/null
  mkdir -p "$ZO_HOME"
  exec 9>"$ZO_HOME/.lock"
  flock 9
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    wait_ready "$pid"
    say "already running (pid $pid)"
    echo "$ISSUER"
    return
  fi
  if curl -s -o /dev/null -m 2 "http://127.0.0.1:$ZO_PORT/" 2>/dev/null; then
    die "something else is listening on port $ZO_PORT (not started by this script); choose another ZO_PORT"
  fi
  local users=()
  if [ -n "$ZO_USERS_FILE" ]; then
    [ -f "$ZO_USERS_FILE" ] || die "users file not found: $ZO_USERS_FILE"
    users=(USERS_FILE="$ZO_USERS_FILE")
  fi
  say "starting $MODULE@$ZO_VERSION on $ISSUER, log $LOG"
  # own session (so `stop` signals exactly it), no tty, output to the log
  env -i PATH="$PATH" PORT="$ZO_PORT" REDIRECT_URI="$ZO_REDIRECT_URI" "${users[@]}" \
    setsid "$BIN" </dev/null >"$LOG" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  wait_ready "$pid"
  say "ready (pid $pid)"
  echo "$ISSUER"
}

cmd_stop() {
  local pid i
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    say "not running (port $ZO_PORT)"
    rm -f "$PIDFILE"
    return
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      say "stopped"
      return
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

cmd_status() {
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ] && [ "$(http_code "$DISCOVERY")" = 200 ]; then
    say "up (pid $pid)"
    echo "$ISSUER"
    return 0
  fi
  say "not running"
  return 1
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 build|start|stop|status   (see the header of this script for the ZO_* settings)" >&2
    exit 2
    ;;
esac

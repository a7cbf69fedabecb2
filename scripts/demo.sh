#!/usr/bin/env bash
# demo.sh - the proxy for real: Redis, Keycloak (realm "demo"), a sample app and the proxy, all on
# 127.0.0.1. Installs what is missing, prints where to sign in, stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SKIP_ZITADEL_OP=1 bash scripts/setup.sh

RUN=${XDG_RUNTIME_DIR:-/tmp}/auth-proxy-demo
mkdir -p "$RUN"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "[demo] stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  KC_PORT=18080 bash scripts/keycloak.sh stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

redis-server --port 16380 --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN" \
  --logfile "$RUN/redis.log" &
pids+=($!)
.venv/bin/python demo/sample_app.py 8080 >"$RUN/sample-app.log" 2>&1 &
pids+=($!)
echo "[demo] starting Keycloak (the first time downloads it: ~200 MB, then ~30 s to start)"
KC_PORT=18080 bash scripts/keycloak.sh start >/dev/null
.venv/bin/auth-proxy --config config/demo.yaml --log-format text >"$RUN/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:4180/ready && break; sleep 0.2; done
curl -sf -o /dev/null http://127.0.0.1:4180/ready || { echo "[demo] the proxy is not ready; see $RUN/proxy.log"; exit 1; }

cat <<TXT

  The demo is up.

    Open           http://127.0.0.1:4180/
    Sign in as     alice / alice-password      (or bigtoken / bigtoken-password: 300 groups, a 20 kB ID token)
    Keycloak admin http://127.0.0.1:18080/admin/  (admin / admin)
    Logs           $RUN/

  Sign out with the button on the page: the next visit shows Keycloak's login form again.
  Ctrl-C stops everything.

TXT
wait "${pids[-1]}"

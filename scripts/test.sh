#!/usr/bin/env bash
# test.sh - the whole test suite, as CI runs it: installs what is missing, checks style and types,
# then runs pytest (the Keycloak-backed tests start a real Keycloak through scripts/keycloak.sh,
# Redis and nginx are started by the tests themselves on free ports).
# Extra arguments go to pytest, e.g. scripts/test.sh -k logout
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check proxy tests
.venv/bin/ruff format --check proxy tests
.venv/bin/mypy
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"

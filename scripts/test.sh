#!/usr/bin/env bash
# test.sh - the whole test suite, as CI runs it: installs what is missing, checks style and types,
# then runs pytest (the Keycloak-backed tests start a real Keycloak through scripts/keycloak.sh, the
# zitadel OP ones zitadel/oidc's example OP through scripts/zitadel-op.sh, built by setup.sh;
# Redis and nginx are started by the tests themselves on free ports).
# Extra arguments go to pytest, e.g. scripts/test.sh -k logout
# The long fuzz run (tests/security/test_fuzz.py::test_long, ~2.5 min) is on here, off in a bare
# pytest run; LONG_FUZZ=0 scripts/test.sh skips it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check proxy tests
.venv/bin/ruff format --check proxy tests
.venv/bin/mypy
LONG_FUZZ="${LONG_FUZZ:-1}" exec .venv/bin/python -m pytest -p no:cacheprovider "$@"

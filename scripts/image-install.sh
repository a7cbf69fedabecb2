#!/bin/sh
# image-install.sh VENV - the Dockerfile's install step, kept in one file so that the test suite runs
# the very same commands (tests/deploy/test_image_install.py) on machines without a Docker engine.
#
# Into a new virtualenv VENV, with neither pip nor setuptools in it: the locked runtime dependencies as
# wheels only (no compiler is needed or left behind), then the project, built into a wheel by the
# locked setuptools in a throwaway venv, fetching nothing unlocked. Run from the source tree
# (pyproject.toml, README.md, proxy/, requirements/).
set -eu
venv=$1
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
pip() { "$tools/venv/bin/pip" --disable-pip-version-check --no-cache-dir "$@"; }
pip install -q --require-hashes --no-deps -r requirements/requirements-build.lock
pip wheel -q --no-deps --no-build-isolation -w "$tools/wheels" .

python3 -m venv --without-pip "$venv"
pip --python "$venv/bin/python" install -q --require-hashes --no-deps --only-binary :all: \
  -r requirements/requirements-runtime.lock
pip --python "$venv/bin/python" install -q --no-deps "$tools"/wheels/*.whl
pip --python "$venv/bin/python" check
"$venv/bin/auth-proxy" --help >/dev/null

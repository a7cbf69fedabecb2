# auth-proxy: slim, non-root, health-checked, installed from the lock (requirements/requirements-runtime.lock).
#
# The base image is pinned to a Python patch release on Debian bookworm. For a byte-for-byte
# reproducible base, pin its digest too: docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY requirements ./requirements
COPY scripts/image-install.sh ./scripts/
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# Wheels only, with hashes, from the lock; the project's wheel built by the locked setuptools.
RUN sh scripts/image-install.sh /venv

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin authproxy
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001
EXPOSE 4180
# Liveness. In Kubernetes use the probes instead: livenessProbe GET /ping, readinessProbe GET /ready
# (503 while Redis or the provider's keys are unreachable), as deploy/kubernetes does.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:4180/ping', timeout=2).status != 200)"]
ENTRYPOINT ["auth-proxy"]
CMD ["--config", "/config/proxy.yaml"]

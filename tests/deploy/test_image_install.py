"""The lock is what gets installed, and the image's install step works on its own.

No Docker engine runs here, so the Dockerfile's one install command lives in
``scripts/image-install.sh`` and this test runs that very script into a clean venv from the lock.
The rest of the Dockerfile is checked for what an operator relies on: a pinned base image, a
non-root user, no build tools in the final stage, a health check.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT

LOCKS = ROOT / "requirements"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.M)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    return {_norm(name): version for name, version in _PIN.findall((LOCKS / lock).read_text())}


def test_every_locked_line_has_hashes() -> None:
    for role in ("test", "runtime", "bench", "build", "tools"):
        lock = f"requirements-{role}.lock"
        text = (LOCKS / lock).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 2)[2])
        assert entries and all("--hash=sha256:" in entry for entry in entries), lock


def test_locks_agree_with_each_other() -> None:
    """The image, the benchmarks and the tests run the same versions."""
    tested = pins("requirements-test.lock")
    for lock in ("requirements-runtime.lock", "requirements-bench.lock", "requirements-build.lock"):
        for name, version in pins(lock).items():
            if name in tested:
                assert tested[name] == version, f"{lock}: {name} {version} but test.lock has {tested[name]}"
    assert set(pins("requirements-runtime.lock")) <= set(tested)


def test_lock_satisfies_pyproject() -> None:
    """A range changed in pyproject.toml without ``scripts/lock.sh`` fails here, not on a user's machine."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tested = pins("requirements-test.lock")
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    for spec in wanted:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = _norm(req.name)
        assert name in tested, f"{req.name} is in pyproject.toml but not in the test lock"
        assert req.specifier.contains(tested[name], prereleases=True), (
            f"{req.name}=={tested[name]} is locked, outside pyproject's {req.specifier}"
        )


def test_this_venv_is_the_lock() -> None:
    """What runs these tests is exactly what the lock names."""
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    have = {_norm(n): v for n, v in _PIN.findall(installed)}
    for name, version in pins("requirements-test.lock").items():
        if name in ("async-timeout",):  # python_full_version < '3.11.3' only
            continue
        assert have.get(name) == version, f"{name}: {have.get(name)} installed, {version} locked"


def test_dockerfile_is_pinned_non_root_and_health_checked() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base.group(1))
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    final = DOCKERFILE.split("\nFROM ${PYTHON_IMAGE}\n", 1)[1]
    assert re.search(r"^USER 10001$", final, re.M)
    assert "HEALTHCHECK" in final
    assert "RUN sh scripts/image-install.sh /venv" in DOCKERFILE
    # The final stage copies the built venv and installs nothing: no compiler, pip cache or build tree.
    assert not re.search(r"^RUN .*(pip|apt-get|gcc)", final, re.M)


@pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3 on PATH, as the image has")
def test_image_install_step_from_the_lock(tmp_path: Path) -> None:
    """The Dockerfile's RUN line, in a copy of the build context: wheels only, hashes checked."""
    context = tmp_path / "src"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    for tree in ("proxy", "requirements", "scripts"):
        shutil.copytree(ROOT / tree, context / tree, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["sh", "scripts/image-install.sh", str(venv)],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    frozen = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--python",
            str(venv / "bin" / "python"),
            "list",
            "--format=freeze",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    have = {_norm(n): v for n, v in _PIN.findall(frozen)}
    runtime = pins("requirements-runtime.lock")
    runtime.pop("async-timeout", None)
    assert {name: have.get(name) for name in runtime} == runtime
    assert have.get("auth-proxy") is not None
    assert not {"setuptools", "pip", "pytest"} & set(have)
    check = subprocess.run(
        [str(venv / "bin" / "auth-proxy"), "--check-config", "--config", str(ROOT / "config" / "demo.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr

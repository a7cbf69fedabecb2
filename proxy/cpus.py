"""How many CPUs this process may use: what ``server.workers: auto`` starts.

The smaller of
- the CPUs in this process's affinity mask (``taskset``, ``docker --cpuset-cpus``, Kubernetes'
  static CPU manager), and
- the CPU bandwidth limit of its cgroup and of every ancestor cgroup, rounded up
  (``docker --cpus``, Kubernetes ``resources.limits.cpu``): cgroup v2 ``cpu.max`` ("max 100000" or
  "150000 100000"), cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: no limit),

and at least 1. That is what Go (1.25+) reads for GOMAXPROCS, less its floor of 2: a process limited
to one CPU gets one worker, as a second would only take turns with the first.

The parsing is pure (:func:`cgroup_limit` takes a function that reads a file) so that tests can hand
it any hierarchy; :func:`usable_cpus` reads the real one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import PurePosixPath

CGROUP_ROOT = "/sys/fs/cgroup"
Reader = Callable[[str], "str | None"]


def read_text(path: str) -> str | None:
    """The file's text, or ``None`` when it can't be read (absent, not a cgroup file system, ...)."""
    try:
        with open(path, encoding="ascii") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None


def _v2_limit(text: str | None) -> float | None:
    """``cpu.max``: "$MAX $PERIOD", MAX "max" for no limit."""
    fields = (text or "").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_limit(quota_text: str | None, period_text: str | None) -> float | None:
    try:
        quota, period = int((quota_text or "").strip()), int((period_text or "").strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _ancestry(cgroup_path: str) -> list[str]:
    """``/a/b`` → ``["/a/b", "/a", "/"]``: a limit on any ancestor applies too."""
    path = PurePosixPath("/" + cgroup_path.strip().lstrip("/"))
    if ".." in path.parts:
        return ["/"]
    return [str(path), *(str(parent) for parent in path.parents)]


def cgroup_limit(proc_self_cgroup: str | None, read: Reader, root: str = CGROUP_ROOT) -> float | None:
    """The tightest CPU bandwidth limit on this process's cgroups, in CPUs; ``None``: no limit found.

    ``proc_self_cgroup`` is the text of ``/proc/self/cgroup``: "0::/path" lines for cgroup v2,
    "N:cpu,cpuacct:/path" for v1. Inside a container with its own cgroup namespace the path is "/"
    and the container's limit is on the root of what it sees.
    """
    limits: list[float] = []
    for line in (proc_self_cgroup or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2, unified
            for directory in _ancestry(path):
                limit = _v2_limit(read(f"{root}{directory.rstrip('/')}/cpu.max"))
                if limit is not None:
                    limits.append(limit)
        elif "cpu" in controllers.split(","):
            for mount in (f"{root}/{controllers}", f"{root}/cpu,cpuacct", f"{root}/cpu"):
                for directory in _ancestry(path):
                    base = f"{mount}{directory.rstrip('/')}"
                    limit = _v1_limit(read(f"{base}/cpu.cfs_quota_us"), read(f"{base}/cpu.cfs_period_us"))
                    if limit is not None:
                        limits.append(limit)
    return min(limits) if limits else None


def affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def usable_cpus(read: Reader = read_text) -> int:
    """The CPUs this process may use (see the module docstring); at least 1."""
    cpus = affinity_cpus()
    limit = cgroup_limit(read("/proc/self/cgroup"), read)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)

"""``workers: auto``: the CPUs this process may use, from affinity and the cgroup CPU limit."""

from __future__ import annotations

import os

import pytest

from proxy import cpus
from proxy.cpus import cgroup_limit, usable_cpus


def reader(files: dict[str, str]) -> cpus.Reader:
    return files.get


V2 = "0::/kubepods/pod1/ctr\n"
V1 = "12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n"


@pytest.mark.parametrize(
    ("proc", "files", "limit"),
    [
        # cgroup v2
        (V2, {}, None),
        (V2, {"/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000\n"}, None),
        (V2, {"/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "150000 100000\n"}, 1.5),
        # a tighter limit on an ancestor applies
        (
            V2,
            {
                "/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "400000 100000",
                "/sys/fs/cgroup/kubepods/pod1/cpu.max": "50000 100000",
            },
            0.5,
        ),
        # in a cgroup namespace the container's own limit is on the root it sees
        ("0::/\n", {"/sys/fs/cgroup/cpu.max": "200000 100000"}, 2.0),
        # nonsense is no limit, never an error
        (V2, {"/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "lots 100000"}, None),
        (V2, {"/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "0 100000"}, None),
        (V2, {"/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "100000 0"}, None),
        (V2, {"/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": ""}, None),
        ("0::/../../etc\n", {"/sys/fs/cgroup/cpu.max": "100000 100000"}, 1.0),
        ("garbage", {}, None),
        (None, {}, None),
        # cgroup v1
        (
            V1,
            {
                "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000\n",
                "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
            },
            2.5,
        ),
        (
            V1,
            {
                "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "-1\n",
                "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
            },
            None,
        ),
        # v1 mounted as plain "cpu"
        (
            V1,
            {
                "/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us": "100000",
                "/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us": "100000",
            },
            1.0,
        ),
    ],
)
def test_cgroup_limit(proc: str | None, files: dict[str, str], limit: float | None) -> None:
    assert cgroup_limit(proc, reader(files)) == limit


@pytest.mark.parametrize(
    ("affinity", "cpu_max", "expected"),
    [
        (8, None, 8),
        (8, "150000 100000", 2),  # 1.5 CPUs: rounded up, as Go does
        (8, "50000 100000", 1),  # half a CPU: one worker, never zero
        (2, "400000 100000", 2),  # the affinity mask is tighter
        (1, None, 1),
    ],
)
def test_usable_cpus(
    monkeypatch: pytest.MonkeyPatch, affinity: int, cpu_max: str | None, expected: int
) -> None:
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: affinity)
    files = {"/proc/self/cgroup": "0::/\n"}
    if cpu_max is not None:
        files["/sys/fs/cgroup/cpu.max"] = cpu_max
    assert usable_cpus(reader(files)) == expected


def test_this_machine() -> None:
    """The real files: never more than the affinity mask, never less than one."""
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))

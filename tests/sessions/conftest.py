"""Redis behind Sentinel and as a Cluster, real servers started once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_ha import ClusterSetup, SentinelSetup, cluster_setup, sentinel_setup


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSetup]:
    with sentinel_setup() as setup:
        yield setup


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterSetup]:
    with cluster_setup() as setup:
        yield setup

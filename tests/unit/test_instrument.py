"""``proxy.metrics.instrument``: one wrapper counts and times any role object's async calls."""

from __future__ import annotations

import pytest

from proxy.errors import StoreUnavailable
from proxy.metrics import instrument
from proxy.metrics_registry import Metrics


class Role:
    closed = False

    @property
    def fragile(self) -> int:
        raise TypeError("a property is never read by the wrapper")

    async def get(self, key: str) -> str:
        return key.upper()

    async def fail(self) -> None:
        raise StoreUnavailable("down")

    async def close(self) -> None:
        self.closed = True

    def plain(self) -> int:
        return 7


def sample(m: Metrics, name: str, **labels: str) -> float:
    value = m.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_calls_errors_and_times_are_counted_by_method_name() -> None:
    metrics, inner = Metrics(), Role()
    role = instrument(inner, metrics)
    assert await role.get("k") == "K"
    assert await role.get("j") == "J"
    with pytest.raises(StoreUnavailable):
        await role.fail()
    assert sample(metrics, "auth_proxy_store_operations_total", op="get") == 2
    assert sample(metrics, "auth_proxy_store_errors_total", op="get") == 0
    assert sample(metrics, "auth_proxy_store_operations_total", op="fail") == 1
    assert sample(metrics, "auth_proxy_store_errors_total", op="fail") == 1
    assert sample(metrics, "auth_proxy_store_operation_duration_seconds_count") == 3
    # close is passed through uncounted; anything else is the inner object's
    await role.close()
    assert inner.closed and sample(metrics, "auth_proxy_store_operations_total", op="close") == 0
    assert role.plain() == 7

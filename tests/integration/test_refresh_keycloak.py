"""Refresh against the real Keycloak, and a session that ends when Keycloak's SSO session ends even
when no back-channel logout reaches us (the refresh is refused with invalid_grant)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from proxy.keys import COOKIES, STORE
from proxy.sessions.base import Ticket
from tests.conftest import Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser, submit_login
from tests.support.keycloak_admin import backchannel_url, logout_user

pytestmark = pytest.mark.keycloak


@pytest.fixture
async def proxy(
    make_proxy: ProxyFactory, keycloak: Keycloak, upstream: str, redis_url: str
) -> AsyncIterator[RunningProxy]:
    running = await make_proxy(
        issuer=keycloak.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis_url}
    )
    # No back-channel logout for this test: the refresh alone must notice the SSO session ended.
    async with backchannel_url(keycloak.url, keycloak.realm, ""):
        yield running


async def expire(proxy: RunningProxy, ticket: Ticket) -> str:
    session = await proxy.app[STORE].load(ticket)
    assert session is not None
    await proxy.app[STORE].save(ticket, replace(session, access_expires_at=time.time() - 1))
    return session.access_token


async def test_refresh_then_keycloak_session_end(proxy: RunningProxy, keycloak: Keycloak) -> None:
    await logout_user(keycloak.url, keycloak.realm, "alice")
    async with new_browser(keycloak.url) as browser:
        page = await submit_login(
            browser, await navigate(browser, proxy.url + "/app"), "alice", "alice-password"
        )
        assert page.status == 200
        ticket = proxy.app[COOKIES].decode(
            next(c.value for c in browser.cookie_jar if c.key == "_auth_proxy")
        )
        assert ticket is not None
        first = await proxy.app[STORE].load(ticket)
        assert first is not None and first.refresh_expires_at is not None
        assert first.refresh_expires_at - time.time() == pytest.approx(1800, abs=60)  # the realm's SSO idle

        old_access = await expire(proxy, ticket)
        async with browser.get(proxy.url + "/app") as r:
            assert r.status == 200
        renewed = await proxy.app[STORE].load(ticket)
        assert renewed is not None and renewed.access_token != old_access
        assert renewed.identity == first.identity

        await logout_user(keycloak.url, keycloak.realm, "alice")  # SSO session ends; nobody tells us
        assert await proxy.app[STORE].load(ticket) is not None
        await expire(proxy, ticket)
        page = await navigate(browser, proxy.url + "/app")
        assert page.is_keycloak_login
        assert await proxy.app[STORE].load(ticket) is None

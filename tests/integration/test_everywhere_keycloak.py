"""Sign out everywhere, for real: a user signed in on two devices signs out on one with
?everywhere=1, and both Keycloak sessions end (the other one ended from the server)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Keycloak, ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser, submit_login
from tests.support.keycloak_admin import create_user, delete_user, user_sessions

pytestmark = pytest.mark.keycloak


@pytest.fixture
async def user(keycloak: Keycloak) -> AsyncIterator[str]:
    name = "erin-" + secrets.token_hex(4)
    user_id = await create_user(keycloak.url, keycloak.realm, name, f"{name}-password")
    yield name
    await delete_user(keycloak.url, keycloak.realm, user_id)


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, keycloak: Keycloak, upstream: str, redis_url: str) -> RunningProxy:
    return await make_proxy(
        issuer=keycloak.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis_url}
    )


async def test_sign_out_everywhere_ends_every_keycloak_session(
    proxy: RunningProxy, keycloak: Keycloak, user: str
) -> None:
    async with new_browser(keycloak.url) as laptop, new_browser(keycloak.url) as phone:
        for device in (laptop, phone):
            page = await submit_login(
                device, await navigate(device, proxy.url + "/app"), user, f"{user}-password"
            )
            assert page.status == 200
        assert len(await user_sessions(keycloak.url, keycloak.realm, user)) == 2  # two SSO sessions

        async with laptop.get(proxy.url + "/oauth/sessions") as r:
            assert len((await r.json())["sessions"]) == 2
        page = await navigate(laptop, proxy.url + "/oauth/sign_out?everywhere=1&rd=/app")
        assert page.is_keycloak_login
        assert await user_sessions(keycloak.url, keycloak.realm, user) == []
        page = await navigate(phone, proxy.url + "/app")
        assert page.is_keycloak_login  # the phone is signed out too, not signed straight back in

"""Providers without logout features, served as altered discovery documents by the fake provider:
no ``end_session_endpoint`` (Google, GitHub-style gateways), no ``revocation_endpoint``, no back-channel
logout. Sign-out still ends every local session, and the page and a log line say plainly that the
provider's session was not ended; ``logout.provider_logout_url`` reaches non-standard sign-outs."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.keys import COOKIES, PROVIDERS, STORE
from tests.conftest import ProxyFactory
from tests.support.browser import navigate
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser

NO_LOGOUT = {"end_session_endpoint": None, "revocation_endpoint": None}
AUTH0 = "https://tenant.example.com/v2/logout?client_id={client_id}&returnTo={post_logout_redirect_uri}"


def local_only_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "logout_local_only"]


@pytest.mark.parametrize("mode", ["redirect", "backend"])
async def test_no_end_session_endpoint_signs_out_here_and_says_the_provider_session_lives(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    fake_provider.discovery_extra = NO_LOGOUT
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout={"mode": mode})
    async with await signed_in_browser(proxy.url) as browser:
        ticket = proxy.app[COOKIES].decode(session_cookie(browser))
        assert ticket is not None
        page = await navigate(browser, proxy.url + "/oauth/sign_out?rd=/bye")
        assert page.status == 200 and page.url == proxy.url + "/oauth/sign_out?rd=/bye"
        assert "Signed out of this site only" in page.text
        assert "session at the sign-in provider was not ended" in page.text
        assert f'href="{proxy.url}/bye"' in page.text
        assert await proxy.app[STORE].load(ticket) is None
        assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)
        page = await navigate(browser, proxy.url + "/oauth/signed_out")
        assert "at the sign-in provider" not in page.text and "may still be active" in page.text
    (line,) = local_only_logs(caplog)
    assert "end_session_endpoint" in line.getMessage() and line.levelno == logging.WARNING
    assert not fake_provider.end_session_posts


async def test_sign_out_everywhere_ends_every_local_session_without_provider_logout(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    fake_provider.discovery_extra = NO_LOGOUT
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, session={"store": "redis", "redis_url": redis_url}
    )
    async with await signed_in_browser(proxy.url) as laptop, await signed_in_browser(proxy.url) as phone:
        tickets = [proxy.app[COOKIES].decode(session_cookie(b)) for b in (laptop, phone)]
        page = await navigate(laptop, proxy.url + "/oauth/sign_out?everywhere=1")
        assert page.status == 200 and "Signed out of this site only" in page.text
        for ticket in tickets:
            assert ticket is not None and await proxy.app[STORE].load(ticket, cached=False) is None
        async with phone.get(proxy.url + "/hello", allow_redirects=False) as r:
            assert r.status == 302 and "/oauth/start" in r.headers["Location"]
    assert local_only_logs(caplog)  # the other session's provider session: not ended either, and said


async def test_provider_logout_url_template_is_used_with_encoded_values(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream,
        logout={"provider_logout_url": AUTH0, "allowed_redirect_domains": ["app.example.org"]},
    )  # fmt: skip
    async with await signed_in_browser(proxy.url) as browser:
        rd = "https://app.example.org/bye?a=1&b=2#top"
        async with browser.get(proxy.url + "/oauth/sign_out", params={"rd": rd}, allow_redirects=False) as r:
            assert r.status == 302
            location = r.headers["Location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "tenant.example.com",
        "/v2/logout",
        "",
    )
    assert parse_qs(parts.query) == {"client_id": ["proxy"], "returnTo": [rd]}
    assert not fake_provider.end_session_posts  # the template wins over discovery's end_session_endpoint


async def test_provider_logout_url_with_backend_mode_still_sends_the_browser(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    fake_provider.discovery_extra = NO_LOGOUT
    logout = {"provider_logout_url": AUTH0, "mode": "backend"}
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout=logout)
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/oauth/sign_out", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"].startswith(
                "https://tenant.example.com/v2/logout?"
            )


async def test_post_logout_redirect_uri_can_be_left_out(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    logout = {"send_post_logout_redirect_uri": False}
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout=logout)
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/oauth/sign_out", allow_redirects=False) as r:
            query = parse_qs(urlsplit(r.headers["Location"]).query)
    assert set(query) == {"client_id", "id_token_hint"}


async def test_no_revocation_endpoint_is_logged_and_sign_out_goes_on(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_provider.discovery_extra = {"revocation_endpoint": None}
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout={"revoke_tokens": True})
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/oauth/sign_out", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"].startswith(fake_provider.issuer + "/logout")
    assert not fake_provider.revocations
    assert any(
        "not revoked" in r.getMessage() and "revocation_endpoint" in r.getMessage() for r in caplog.records
    )


async def test_discovery_names_the_missing_logout_features(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake_provider.discovery_extra = NO_LOGOUT
    proxy = await make_proxy(issuer=fake_provider.issuer)
    meta = proxy.app[PROVIDERS].default.discovery.metadata
    assert len(meta.missing_logout_features()) == 3
    fake_provider.discovery_extra = {"backchannel_logout_supported": True}
    assert (await proxy.app[PROVIDERS].default.discovery.discover()).missing_logout_features() == []
    lines = [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "provider_logout_feature"]
    assert any("end_session_endpoint" in m for m in lines) and any("back-channel" in m for m in lines)

"""Sign-out: our session ends, the cookie goes, and the browser is sent to end the provider's."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.keys import COOKIES, STORE
from tests.conftest import ProxyFactory, RunningProxy
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.login import session_cookie, signed_in_browser


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> RunningProxy:
    return await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, logout={"allowed_redirect_domains": [".example.org"]}
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_sign_out_ends_both_sessions(
    proxy: RunningProxy, fake_provider: FakeProvider, method: str
) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        ticket = proxy.app[COOKIES].decode(session_cookie(browser))
        assert ticket is not None
        session = await proxy.app[STORE].load(ticket)
        assert session is not None
        async with browser.request(method, proxy.url + "/oauth/sign_out?rd=/bye", allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Cache-Control"] == "no-store"
            location = urlsplit(r.headers["Location"])
            cleared = r.cookies["_auth_proxy"]
        assert f"{location.scheme}://{location.netloc}{location.path}" == fake_provider.issuer + "/logout"
        q = parse_qs(location.query)
        assert q["id_token_hint"] == [session.id_token]
        assert q["client_id"] == ["proxy"]
        assert q["post_logout_redirect_uri"] == [proxy.url + "/bye"]
        assert cleared.value == "" and cleared["max-age"] == "0" and cleared["path"] == "/"
        assert await proxy.app[STORE].load(ticket) is None
        assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)
        async with browser.get(proxy.url + "/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"].startswith("/oauth/start")


@pytest.mark.parametrize(
    "rd, expected",
    [
        ("https://app.example.org/home", "https://app.example.org/home"),
        ("https://evil.example/", "{proxy}/"),
        ("//evil.example", "{proxy}/"),
        ("", "{proxy}/"),
    ],
)
async def test_post_logout_target_is_validated(proxy: RunningProxy, rd: str, expected: str) -> None:
    async with await signed_in_browser(proxy.url) as browser:
        async with browser.get(proxy.url + "/oauth/sign_out?rd=" + rd, allow_redirects=False) as r:
            q = parse_qs(urlsplit(r.headers["Location"]).query)
        assert q["post_logout_redirect_uri"] == [expected.format(proxy=proxy.url)]


async def test_without_a_session_it_goes_straight_to_the_target(proxy: RunningProxy) -> None:
    async with new_browser() as browser:
        async with browser.get(proxy.url + "/oauth/sign_out?rd=/bye", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == proxy.url + "/bye"


async def test_huge_id_token_is_sent_by_post_form(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    """A user in 300 groups: the end-session URL would be ~20 kB, so a self-posting form is used."""
    fake_provider.claims["groups"] = [
        f"team-{i:04d}-platform-engineering-observability-squad" for i in range(300)
    ]
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream)
    async with await signed_in_browser(proxy.url) as browser:
        ticket = proxy.app[COOKIES].decode(session_cookie(browser))
        assert ticket is not None
        session = await proxy.app[STORE].load(ticket)
        assert session is not None and len(session.id_token) > 15000
        page = await navigate(browser, proxy.url + "/oauth/sign_out?rd=/bye")
        assert page.status == 200
        method, action = page.form("end-session")
        assert (method, action) == ("POST", fake_provider.issuer + "/logout")
        assert f'name="id_token_hint" value="{session.id_token}"' in page.text
        assert f'value="{proxy.url}/bye"' in page.text
        csp = page.headers["Content-Security-Policy"]
        nonce = csp.split("script-src 'nonce-")[1].split("'")[0]
        assert f'<script nonce="{nonce}">' in page.text
        assert page.headers["Cache-Control"] == "no-store"
        assert "<button" in page.text  # works with scripts off
        assert await proxy.app[STORE].load(ticket) is None


async def test_length_switch_is_configurable(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout={"max_url_length": 256})
    async with await signed_in_browser(proxy.url) as browser:
        page = await navigate(browser, proxy.url + "/oauth/sign_out")
        assert page.status == 200 and 'id="end-session"' in page.text


async def test_backend_mode_ends_the_provider_session_from_the_server(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout={"mode": "backend"})
    async with await signed_in_browser(proxy.url) as browser:
        ticket = proxy.app[COOKIES].decode(session_cookie(browser))
        assert ticket is not None
        session = await proxy.app[STORE].load(ticket)
        assert session is not None
        async with browser.post(proxy.url + "/oauth/sign_out?rd=/bye", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == proxy.url + "/bye"  # no provider page
        (call,) = fake_provider.end_session_posts
        assert call["refresh_token"] == session.refresh_token and call["id_token_hint"] == session.id_token
        assert call["authorization"].startswith("Basic ")
        assert await proxy.app[STORE].load(ticket) is None


async def test_backend_mode_with_the_provider_failing_says_so(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout={"mode": "backend"})
    fake_provider.end_session_status = 500
    async with await signed_in_browser(proxy.url) as browser:
        ticket = proxy.app[COOKIES].decode(session_cookie(browser))
        page = await navigate(browser, proxy.url + "/oauth/sign_out?rd=/bye")
        assert page.status == 200 and "may still be active" in page.text
        assert f'href="{proxy.url}/bye"' in page.text
        assert ticket is not None and await proxy.app[STORE].load(ticket) is None  # ended here all the same
        assert not any(c.key == "_auth_proxy" for c in browser.cookie_jar)


async def test_revoke_tokens(make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str) -> None:
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout={"revoke_tokens": True})
    async with await signed_in_browser(proxy.url) as browser:
        ticket = proxy.app[COOKIES].decode(session_cookie(browser))
        assert ticket is not None
        session = await proxy.app[STORE].load(ticket)
        assert session is not None
        async with browser.get(proxy.url + "/oauth/sign_out", allow_redirects=False) as r:
            assert r.status == 302
        assert [c["token"] for c in fake_provider.revocations] == [session.refresh_token]
        assert fake_provider.revocations[0]["token_type_hint"] == "refresh_token"

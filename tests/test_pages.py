"""The proxy's own pages: built-in or from the user's templates directory, with the provider's name;
the sign-in page when skip_provider_button is false; never a stack trace."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from proxy import pages
from proxy.app import create_app
from proxy.config import ConfigError, load_settings
from tests.conftest import COOKIE_SECRET, ROOT, ProxyFactory
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.support.login import signed_in_browser


async def test_builtin_pages_are_accessible_and_name_the_provider(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, pages={"provider_name": "Acme ID"}
    )
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/oauth/signed_out")
        assert page.status == 200
        assert '<html lang="en">' in page.text and "<title>Signed out</title>" in page.text
        assert "<h1>Signed out</h1>" in page.text and 'href="/"' in page.text
        page = await navigate(browser, proxy.url + "/oauth/sign_in?rd=/x")
        assert "Sign in with Acme ID" in page.text
        assert 'href="/oauth/start?rd=' in page.text


async def test_sign_in_page_first_when_skip_provider_button_is_false(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, pages={"skip_provider_button": False}
    )
    host = fake_provider.issuer.removeprefix("http://").split("/")[0].split(":")[0]
    async with new_browser() as browser:
        async with browser.get(proxy.url + "/reports?y=1", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/oauth/sign_in?rd=%2Freports%3Fy%3D1"
        page = await navigate(browser, proxy.url + "/reports?y=1")
        assert page.status == 200 and f"Sign in with {host}" in page.text  # default name: the issuer's host
        start = page.text.split('href="')[1].split('"')[0].replace("&amp;", "&")
        page = await navigate(browser, proxy.url + start)  # the button: on to the provider, and back
        assert page.status == 200 and '"path_qs": "/reports?y=1"' in page.text.replace("'", '"')


async def test_user_templates_replace_the_builtin_ones(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, tmp_path: Path
) -> None:
    (tmp_path / "page.html").write_text("<main>LAYOUT $title|$message|$status|$provider $body</main>")
    (tmp_path / "signed_out.html").write_text("<p>OWN SIGNED OUT PAGE for $provider</p>")
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream,
        pages={"templates_dir": str(tmp_path), "provider_name": "Acme <ID>"},
    )  # fmt: skip
    async with new_browser() as browser:
        page = await navigate(browser, proxy.url + "/oauth/signed_out")
        assert page.text == "<p>OWN SIGNED OUT PAGE for Acme &lt;ID&gt;</p>"
        page = await navigate(browser, proxy.url + "/oauth/callback?state=x&code=y")
        assert page.status == 400 and page.text.startswith("<main>LAYOUT Sign-in did not complete|")
        assert "|400|Acme &lt;ID&gt; " in page.text and "Try again" in page.text


@pytest.mark.parametrize(
    "text, expect",
    [("<p>$title $nosuch</p>", "nosuch"), ("<p>$</p>", "placeholder")],
)
def test_a_bad_template_stops_start_up_naming_the_file(tmp_path: Path, text: str, expect: str) -> None:
    (tmp_path / "error.html").write_text(text)
    settings = load_settings(
        None, provider={"issuer_url": "http://kc/realms/x", "client_id": "p", "client_secret": "s"},
        cookie={"secret": COOKIE_SECRET}, pages={"templates_dir": str(tmp_path)},
    )  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        create_app(settings)
    assert "error.html" in str(exc.value) and expect in str(exc.value)


def test_templates_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pages.templates_dir"):
        load_settings(
            None, provider={"issuer_url": "http://kc/realms/x", "client_id": "p", "client_secret": "s"},
            cookie={"secret": COOKIE_SECRET}, pages={"templates_dir": str(tmp_path / "nope")},
        )  # fmt: skip


async def test_signed_in_pages_unaffected(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer, upstream=upstream, pages={"skip_provider_button": False}
    )
    async with await signed_in_browser(proxy.url) as browser, browser.get(proxy.url + "/x") as r:
        assert r.status == 200
    async with aiohttp.ClientSession() as api, api.get(proxy.url + "/x") as r:
        assert r.status == 401  # API clients still get JSON, not the page


# --- escaping: every value put into a page is text, never markup -----------------------------------

HOSTILE = "\"'><script>alert(1)</script>&amp;<img src=x onerror=alert(2)>"
ESCAPED = "&quot;&#x27;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;&lt;img src=x onerror=alert(2)&gt;"


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("link", {"url": HOSTILE, "label": HOSTILE}),
        ("signed_in_as", {"who": HOSTILE}),
        ("sign_out_form", {"action": HOSTILE, "field": HOSTILE, "token": HOSTILE, "label": HOSTILE}),
        ("hidden_field", {"name": HOSTILE, "value": HOSTILE}),
        ("post_form", {"action": HOSTILE, "fields": HOSTILE, "nonce": HOSTILE}),
    ],
)
def test_fragments_escape_every_value(name: str, values: dict[str, str]) -> None:
    text = pages.fragment(name, **values)
    assert HOSTILE not in text and "<script>alert" not in text and "<img" not in text
    assert text.count(ESCAPED) == len(values)


def test_fragments_take_fragments_as_they_are() -> None:
    field = pages.fragment("hidden_field", name="a", value=HOSTILE)
    form = pages.fragment("post_form", action="https://idp.example/logout", fields=field, nonce="n0")
    assert form.startswith('<form id="end-session" method="post" action="https://idp.example/logout">')
    assert f'<input type="hidden" name="a" value="{ESCAPED}">' in form  # escaped once, not twice
    assert '<script nonce="n0">' in form
    assert pages.concat(field, field) == field + field and isinstance(pages.concat(field), pages.Html)


async def test_the_denied_page_shows_a_hostile_name_as_text(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    """The provider's claims are the user's to choose (a display name, an email): on the 403 page
    they are text."""
    fake_provider.claims.update(preferred_username=HOSTILE, email=f"{HOSTILE}@example.test")
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        upstreams=[
            {"prefix": "/", "url": upstream},
            {"prefix": "/admin", "url": upstream, "allowed_groups": ["x"]},
        ],
    )
    async with await signed_in_browser(proxy.url) as browser:
        page = await navigate(browser, proxy.url + "/admin/" + quote(HOSTILE, safe=""))
    assert page.status == 403
    assert HOSTILE not in page.text and "<script>alert" not in page.text and "<img" not in page.text
    assert f"You are signed in as <strong>{ESCAPED} ({ESCAPED}@example.test)</strong>" in page.text


async def test_the_sign_out_confirmation_puts_a_hostile_address_in_its_form_as_text(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    """With logout.allow_get: false, a GET shows a form that POSTs back to the URL it came from:
    the raw request target, which the client chose."""
    proxy = await make_proxy(issuer=fake_provider.issuer, upstream=upstream, logout={"allow_get": False})
    target = '/oauth/sign_out?rd=/x&q="><script>alert(1)</script>'
    async with await signed_in_browser(proxy.url) as browser:
        url = URL(proxy.url + target, encoded=True)
        async with browser.get(url, headers={"Accept": "text/html"}) as r:
            assert r.status == 200
            text = await r.text()
    assert "<script>alert" not in text
    assert f'action="{html.escape(target, quote=True)}"' in text


_TAG = re.compile(
    r"</?(?:a|p|br|div|span|main|h[1-6]|form|input|button|script|style|strong|em|html|head|body|title|meta"
    r"|iframe|img|!doctype)[\s>/]",
    re.IGNORECASE,
)


def test_no_module_writes_html_by_hand() -> None:
    """Markup lives in proxy/templates (pages and the fragments of their bodies), where values are
    escaped on the way in; no string in the code is HTML."""
    found = []
    for path in sorted((ROOT / "proxy").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _TAG.search(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found
    assert _TAG.search('f"<p>{x}</p>"') and not _TAG.search("``Authorization: Bearer <token>``")

"""``logout.provider_logout_url`` (proxy/oidc/logout_url.py): a template an operator writes once and
values that vary per sign-out, one of them (``post_logout_redirect_uri``) built from the request's
``rd``. Two ways to attack it:

1. **A template that can be read two ways or goes somewhere unsafe** is refused at start-up, naming
   the key: placeholders before the path (in the host, the port, the userinfo or the scheme), unknown
   or malformed placeholders, plain http to a non-loopback host, other schemes, user:password@,
   whitespace, control characters, backslashes (browsers read ``\\`` as ``/``).
2. **A value that tries to break out of its slot**: ``&``, ``=``, ``#``, ``?``, ``/``, ``..``, ``%``,
   CR/LF, NUL, spaces, non-ASCII and a ``{placeholder}`` of its own. Every one is percent-encoded, so
   the rendered URL has the template's scheme, host, port and path, exactly the template's query
   keys, no fragment the template did not have, and each value decodes back to itself (a
   property test, any text).
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config import ConfigError, load_settings
from proxy.oidc.logout_url import PLACEHOLDERS, check_template, render_template

BASE = {
    "provider": {"issuer_url": "https://idp.example.com", "client_id": "proxy", "client_secret": "s"},
    "cookie": {"secret": "x" * 32},
}
AUTH0 = "https://tenant.example.com/v2/logout?client_id={client_id}&returnTo={post_logout_redirect_uri}"

BAD_TEMPLATES = [
    ("http://tenant.example.com/logout?returnTo={post_logout_redirect_uri}", "https"),
    ("ftp://tenant.example.com/{client_id}", "https"),
    ("javascript://tenant.example.com/%0aalert(1)", "https"),
    ("data:text/html,{client_id}", "after the host"),
    ("//tenant.example.com/logout?c={client_id}", "after the host"),
    ("https://{client_id}.example.com/logout", "after the host"),
    ("https://tenant.example.com{post_logout_redirect_uri}", "after the host"),
    ("https://tenant.example.com:{client_id}/logout", "after the host"),
    ("https://{client_id}@tenant.example.com/logout", "after the host"),
    ("{post_logout_redirect_uri}", "after the host"),
    ("https://user:pw@tenant.example.com/logout", "user:password@"),
    ("https://evil.example@tenant.example.com/logout", "user:password@"),
    ("https://tenant.example.com/logout?x={returnTo}", "unknown placeholder"),
    ("https://tenant.example.com/logout?x={client_id!r}", "unknown placeholder"),
    ("https://tenant.example.com/logout?x={client_id.__class__}", "unknown placeholder"),
    ("https://tenant.example.com/logout?x={0}", "unknown placeholder"),
    ("https://tenant.example.com/logout?x={}", "unknown placeholder"),
    ("https://tenant.example.com/logout?x=${client_id}", None),  # '$' is literal: accepted
    ("https://tenant.example.com/logout?x={client_id", "lone"),
    ("https://tenant.example.com/logout?x=client_id}", "lone"),
    ("https://tenant.example.com/log out", "spaces"),
    ("https://tenant.example.com/logout\r\nX: y", "control"),
    ("https://tenant.example.com\\@evil.example/", "backslash"),
    ("https://tenant.example.com:99999/logout", "port"),
    ("https:///logout", "host"),
    ("not a url", "spaces"),
]


@pytest.mark.parametrize(("template", "why"), BAD_TEMPLATES)
def test_unsafe_templates_are_refused_at_start_up_naming_the_key(template: str, why: str | None) -> None:
    data = {**BASE, "logout": {"provider_logout_url": template}}
    if why is None:
        assert load_settings(**data).logout.provider_logout_url == template
        return
    with pytest.raises(ConfigError) as info:
        load_settings(**data)
    message = str(info.value)
    assert "logout.provider_logout_url" in message and why in message, message


@pytest.mark.parametrize(
    "template",
    [
        AUTH0,
        "https://tenant.example.com/logout",
        "http://127.0.0.1:8080/logout?returnTo={post_logout_redirect_uri}",
        "http://[::1]:8080/logout?returnTo={post_logout_redirect_uri}",
        "http://localhost/logout/{client_id}?h={id_token_hint}#{{frag}}",
        "HTTPS://Tenant.Example.com/v2/logout?c={client_id}",
    ],
)
def test_good_templates_are_accepted(template: str) -> None:
    assert check_template(template) == template


HOSTILE_VALUES = [
    "https://app.example.org/bye?a=1&returnTo=https://evil.example",
    "x&client_id=evil",
    "x#https://evil.example",
    "x?y=1",
    "../../../evil",
    "/\\evil.example",
    "%26client_id%3Devil",
    "a\r\nSet-Cookie: x=1",
    "a\x00b",
    "a b+c",
    "ｅｖｉｌ／∕․。",
    "{client_id}",
    "{{post_logout_redirect_uri}}",
    "",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_value_stays_inside_its_slot(value: str) -> None:
    url = render_template(AUTH0, {"client_id": value, "post_logout_redirect_uri": value})
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "tenant.example.com",
        "/v2/logout",
        "",
    )
    assert all(0x20 < ord(c) < 0x7F for c in url)
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query == {"client_id": [value], "returnTo": [value]}


@given(values=st.fixed_dictionaries({name: st.text() for name in PLACEHOLDERS}))
def test_any_values_keep_the_templates_shape(values: dict[str, str]) -> None:
    template = "https://t.example:8443/p/{client_id}/q?r={post_logout_redirect_uri}&h={id_token_hint}"
    parts = urlsplit(render_template(template, values))
    assert (parts.scheme, parts.hostname, parts.port, parts.fragment) == ("https", "t.example", 8443, "")
    segments = parts.path.split("/")
    assert segments[:3] == ["", "p", segments[2]] and len(segments) == 4 and segments[3] == "q"
    query = parse_qs(parts.query, keep_blank_values=True)
    assert set(query) == {"r", "h"}
    assert query == {"r": [values["post_logout_redirect_uri"]], "h": [values["id_token_hint"]]}
    assert segments[2] == quote(values["client_id"], safe="")


def test_a_lone_surrogate_does_not_raise() -> None:
    assert render_template(AUTH0, {"client_id": "a\ud800b"}).count("?") == 1

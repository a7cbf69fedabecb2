"""proxy.redirects: the open-redirect guard for ``rd`` and post-logout targets."""

from __future__ import annotations

import pytest

from proxy.redirects import origin, safe_redirect

ORIGIN = "https://proxy.example.com"
ALLOWED = [".example.org", "app.example.net"]


def check(target: str | None) -> str | None:
    return safe_redirect(target, ORIGIN, ALLOWED)


ACCEPTED = [
    pytest.param("/path?q=1", "https://proxy.example.com/path?q=1", id="relative-path"),
    pytest.param("/", "https://proxy.example.com/", id="root"),
    pytest.param("/a/b#frag", "https://proxy.example.com/a/b#frag", id="relative-with-fragment"),
    pytest.param("/@evil.com", "https://proxy.example.com/@evil.com", id="at-sign-in-path"),
    pytest.param("https://proxy.example.com/x?y=1", "https://proxy.example.com/x?y=1", id="own-origin"),
    pytest.param("HTTPS://PROXY.EXAMPLE.COM/x", "HTTPS://PROXY.EXAMPLE.COM/x", id="own-origin-upper-case"),
    pytest.param("https://example.org/", "https://example.org/", id="dot-domain-itself"),
    pytest.param("https://a.b.example.org/x", "https://a.b.example.org/x", id="dot-domain-subdomain"),
    pytest.param(
        "https://xn--80ak6aa92e.example.org/", "https://xn--80ak6aa92e.example.org/", id="punycode-sub"
    ),
    pytest.param("https://app.example.net/home", "https://app.example.net/home", id="exact-host"),
]

REJECTED = [
    pytest.param("//evil.com", id="protocol-relative"),
    pytest.param("///evil.com", id="triple-slash"),
    pytest.param("/\\evil.com", id="slash-backslash"),
    pytest.param("\\\\evil.com", id="double-backslash"),
    pytest.param("https:evil.com", id="scheme-no-slashes"),
    pytest.param("https:/evil.com", id="scheme-one-slash"),
    pytest.param("https:///evil.com", id="scheme-three-slashes"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("JavaScript:alert(1)", id="javascript-mixed-case"),
    pytest.param("data:text/html,x", id="data"),
    pytest.param("ftp://example.org/", id="ftp-allowed-host"),
    pytest.param("https://good.example.org@evil.com", id="userinfo"),
    pytest.param("https://proxy.example.com@evil.com/", id="userinfo-own-host"),
    pytest.param("https://evil.com#@good.example.org", id="fragment-at"),
    pytest.param("https://evil.com?@good.example.org", id="query-at"),
    pytest.param("https://evil.com\\@good.example.org", id="backslash-at"),
    pytest.param("/x\r\nSet-Cookie: a=b", id="crlf"),
    pytest.param("/x\nLocation: //evil.com", id="lf"),
    pytest.param("/\t/evil.com", id="tab"),
    pytest.param("/ /evil.com", id="space"),
    pytest.param("https://evil.com/\x00", id="nul"),
    pytest.param("/\x7f", id="del"),
    pytest.param("%2F%2Fevil.com", id="encoded-slashes-relative"),
    pytest.param("evil.com", id="bare-host"),
    pytest.param("?x=1", id="query-only"),
    pytest.param("#x", id="fragment-only"),
    pytest.param("https://evil.com/", id="other-host"),
    pytest.param("https://example.org.evil.com", id="allowed-as-prefix"),
    pytest.param("https://proxy.example.com.evil.com/", id="own-host-as-prefix"),
    pytest.param("https://evil.com/.example.org", id="allowed-in-path"),
    pytest.param("https://xn--80ak6aa92e.com/", id="punycode-other"),
    pytest.param("https://ex\u0430mple.org", id="cyrillic-a"),
    pytest.param("https://\uff45xample.org", id="fullwidth-e"),
    pytest.param("https://badexample.org", id="suffix-without-dot"),
    pytest.param("https://x.app.example.net/", id="exact-host-subdomain"),
    pytest.param("https://example.net/", id="exact-host-parent"),
    pytest.param("https://example.org./", id="trailing-dot"),
    pytest.param("https://proxy.example.com:8443/", id="own-host-other-port"),
    pytest.param("https://proxy.example.com:443/", id="own-host-explicit-port"),
    pytest.param("https://proxy.example.com:99999/", id="port-out-of-range"),
    pytest.param("https://proxy.example.com:8a/", id="port-not-a-number"),
    pytest.param("https://[::1]/", id="ipv6"),
    pytest.param(None, id="none"),
    pytest.param("", id="empty"),
    pytest.param("/" + "a" * 5000, id="very-long"),
]


@pytest.mark.parametrize(("target", "expected"), ACCEPTED)
def test_accepted(target: str, expected: str) -> None:
    assert check(target) == expected


@pytest.mark.parametrize("target", REJECTED)
def test_rejected(target: str | None) -> None:
    assert check(target) is None


def test_own_host_port_zero_is_rejected() -> None:
    assert check("https://proxy.example.com:0/") is None


def test_without_allowed_domains_only_own_origin_passes() -> None:
    assert safe_redirect("https://example.org/", ORIGIN) is None
    assert safe_redirect("https://proxy.example.com/x", ORIGIN) == "https://proxy.example.com/x"


def test_allowed_domains_are_case_insensitive() -> None:
    assert safe_redirect("https://A.Example.ORG/", ORIGIN, [".EXAMPLE.org"]) == "https://A.Example.ORG/"


def test_origin_with_port() -> None:
    own = "http://localhost:4180"

    assert safe_redirect("http://localhost:4180/x", own) == "http://localhost:4180/x"
    assert safe_redirect("http://localhost/x", own) is None
    assert safe_redirect("http://localhost:4181/x", own) is None


def test_long_but_acceptable_path() -> None:
    target = "/" + "a" * 4000

    assert check(target) == ORIGIN + target


def test_origin() -> None:
    assert origin("https", "proxy.example.com:8443") == "https://proxy.example.com:8443"

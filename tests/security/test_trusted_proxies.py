"""Who the client is (``server.trusted_proxies``, proxy/trusted_proxies.py): the attack table.

Trusted proxies in the table: 10.0.0.0/8 and fd00::/8. "client" is the address the proxy believes
(logs, session records, ``trusted_ips``); "certain" false means it was a guess past an entry that is
not an address (never enough for ``trusted_ips``).

  untrusted peer 203.0.113.9 sends X-Forwarded-For / Forwarded / X-Forwarded-Proto/-Host naming
      anyone (a trusted address too)                                       → the peer; nothing read
  trusted peer, the client prepends a spoofed address (XFF "1.1.1.1, <client>")   → <client>
  the client names a trusted address left of its own ("10.9.9.9, <client>")       → <client>
  chain through two trusted proxies ("<client>, 10.0.0.3")                         → <client>
  several XFF headers (the client's copy first)                                    → right-most untrusted
  every hop trusted ("10.0.0.4, 10.0.0.3")                                         → the left-most
  garbage right of the client ("<client>, garbage"), "unknown", "_hidden", a name,
      "010.0.0.1" (leading zero), "fe80::1%eth0" (zone), full-width digits, "1.2.3.4.5",
      "[1.2.3.4]", "1.2.3.4:x"                                                     → the trusted hop
                                                                                     right of it, uncertain
  more than 32 trusted hops in a row, an entry over 64 bytes                      → uncertain
  garbage left of the client ("garbage, <client>")                                 → <client>, certain
  ports and brackets ("<client>:5555", "[2001:db8::7]:443"), IPv4-mapped ::ffff:10.0.0.5 (trusted),
      an IPv4-mapped peer                                                          → read as addresses
  Forwarded (forwarded_header: forwarded): quoted IPv6 with port, upper-case FOR, the client's own
      element first with host=evil.example (→ the client's element's host is used), obfuscated
      (_hidden, unknown) → uncertain; a comma inside quotes, an unterminated quote, a repeated
      parameter, junk between elements → not read at all (peer, uncertain)
  the header not configured is ignored: Forwarded with x-forwarded-for, and the reverse
  X-Forwarded-Proto/-Host: the right-most value, only http/https and a plain host[:port]

Through the running proxy (the tests' peer is 127.0.0.1): the upstream's X-Forwarded-For starts at the
client (the spoofed part dropped), Forwarded and X-Real-IP never pass, the access log and the session
record name the client, and ``upstreams[].trusted_ips`` passes only on the real client address:
a spoofed XFF from an untrusted peer, a trusted address behind an untrusted hop or a chain ending in
garbage all still need a session; a passed request carries no identity headers (the client's copies
stripped) and is counted and logged. /oauth/auth reads auth_request.front's headers only from a trusted
peer once trusted_proxies is set (else no public route and no redirect, as with front: none).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.config import ConfigError, load_settings
from proxy.keys import METRICS
from proxy.trusted_proxies import ForwardedHeader, Trust, parse_address, parse_forwarded, parse_network
from tests.conftest import ProxyFactory
from tests.security.test_front_headers import ask, front_headers
from tests.support.browser import navigate, new_browser
from tests.support.fake_provider import FakeProvider
from tests.test_logs import access_lines

TRUST = Trust([parse_network("10.0.0.0/8"), parse_network("fd00::/8")])
TRUST_FWD = Trust(TRUST.networks, "forwarded")
PEER = "10.0.0.2"
OUTSIDE = "203.0.113.9"
C = "198.51.100.7"


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


XFF_CASES: list[tuple[str, str, list[tuple[str, str]], str, bool]] = [
    # (case, peer, headers, client, certain)
    ("untrusted peer, spoofed XFF", OUTSIDE, [("X-Forwarded-For", "10.0.0.1")], OUTSIDE, True),
    ("untrusted peer, spoofed XFF chain", OUTSIDE, [("X-Forwarded-For", f"{C}, 10.0.0.1")], OUTSIDE, True),
    ("untrusted peer, spoofed Forwarded", OUTSIDE, [("Forwarded", "for=10.0.0.1")], OUTSIDE, True),
    ("trusted peer, no header", PEER, [], PEER, True),
    ("trusted peer, empty header", PEER, [("X-Forwarded-For", "")], PEER, True),
    ("client prepends a spoof", PEER, [("X-Forwarded-For", f"1.1.1.1, {C}")], C, True),
    ("client names a trusted address", PEER, [("X-Forwarded-For", f"10.9.9.9, {C}")], C, True),
    ("two trusted proxies", PEER, [("X-Forwarded-For", f"{C}, 10.0.0.3")], C, True),
    (
        "several headers",
        PEER,
        [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", f"{C}, 10.0.0.3")],
        C,
        True,
    ),
    (
        "several headers, spoof split",
        PEER,
        [("X-Forwarded-For", "10.1.1.1"), ("X-Forwarded-For", C)],
        C,
        True,
    ),
    ("every hop trusted", PEER, [("X-Forwarded-For", "10.0.0.4, 10.0.0.3")], "10.0.0.4", True),
    ("garbage right of the client", PEER, [("X-Forwarded-For", f"{C}, garbage")], PEER, False),
    ("garbage behind a trusted hop", PEER, [("X-Forwarded-For", f"{C}, x, 10.0.0.3")], "10.0.0.3", False),
    ("garbage left of the client", PEER, [("X-Forwarded-For", f"garbage, {C}")], C, True),
    ("unknown", PEER, [("X-Forwarded-For", "unknown")], PEER, False),
    ("obfuscated", PEER, [("X-Forwarded-For", "_hidden")], PEER, False),
    ("a name", PEER, [("X-Forwarded-For", "client.example")], PEER, False),
    ("leading zero", PEER, [("X-Forwarded-For", "010.0.0.1")], PEER, False),
    ("zone id", PEER, [("X-Forwarded-For", "fe80::1%eth0")], PEER, False),
    ("full-width digits", PEER, [("X-Forwarded-For", "\uff11.2.3.4")], PEER, False),
    ("five octets", PEER, [("X-Forwarded-For", "1.2.3.4.5")], PEER, False),
    ("bracketed IPv4", PEER, [("X-Forwarded-For", "[1.2.3.4]")], PEER, False),
    ("bad port", PEER, [("X-Forwarded-For", "1.2.3.4:x")], PEER, False),
    ("IPv4 with port", PEER, [("X-Forwarded-For", f"{C}:5555")], C, True),
    ("IPv6 with port", PEER, [("X-Forwarded-For", "[2001:db8::7]:443")], "2001:db8::7", True),
    ("IPv6 bare", PEER, [("X-Forwarded-For", "2001:db8::7")], "2001:db8::7", True),
    ("IPv4-mapped trusted hop", PEER, [("X-Forwarded-For", f"{C}, ::ffff:10.0.0.5")], C, True),
    ("IPv4-mapped peer", "::ffff:10.0.0.2", [("X-Forwarded-For", C)], C, True),
    ("trusted IPv6 peer", "fd00::2", [("X-Forwarded-For", C)], C, True),
    ("Forwarded not configured", PEER, [("Forwarded", f"for={C}")], PEER, True),
    (
        "a run of 40 trusted hops",
        PEER,
        [("X-Forwarded-For", ", ".join([C] + ["10.0.0.1"] * 40))],
        "10.0.0.1",
        False,
    ),
    ("a 100-byte entry", PEER, [("X-Forwarded-For", "1" * 100)], PEER, False),
]


@pytest.mark.parametrize(
    ("case", "peer", "sent", "client", "certain"), XFF_CASES, ids=[c[0] for c in XFF_CASES]
)
def test_x_forwarded_for(
    case: str, peer: str, sent: list[tuple[str, str]], client: str, certain: bool
) -> None:
    who = TRUST.resolve(peer, headers(*sent))

    assert (who.ip, who.certain) == (client, certain)
    assert who.chain[0] == client and who.chain[-1] == peer


FWD_CASES: list[tuple[str, str, list[tuple[str, str]], str, bool]] = [
    ("untrusted peer", OUTSIDE, [("Forwarded", "for=10.0.0.1")], OUTSIDE, True),
    ("plain", PEER, [("Forwarded", f"for={C}")], C, True),
    ("quoted IPv6 with port", PEER, [("Forwarded", 'for="[2001:db8::7]:4711"')], "2001:db8::7", True),
    ("upper-case name", PEER, [("Forwarded", f"FOR={C};Proto=https")], C, True),
    ("chain", PEER, [("Forwarded", f"for={C}, for=10.0.0.3")], C, True),
    ("spoofed first element", PEER, [("Forwarded", f"for=1.1.1.1;host=evil.example, for={C}")], C, True),
    ("several headers", PEER, [("Forwarded", "for=1.1.1.1"), ("Forwarded", f"for={C}")], C, True),
    ("obfuscated", PEER, [("Forwarded", "for=_hidden")], PEER, False),
    ("unknown", PEER, [("Forwarded", "for=unknown")], PEER, False),
    ("no for", PEER, [("Forwarded", "proto=https")], PEER, False),
    ("comma inside quotes", PEER, [("Forwarded", f'for="{C}, 10.0.0.1"')], PEER, False),
    ("unterminated quote", PEER, [("Forwarded", f'for="{C}')], PEER, False),
    ("repeated parameter", PEER, [("Forwarded", f"for=1.1.1.1;for={C}")], PEER, False),
    ("junk between elements", PEER, [("Forwarded", f"for=1.1.1.1 x, for={C}")], PEER, False),
    ("unquoted IPv6 (invalid token)", PEER, [("Forwarded", "for=[2001:db8::7]")], PEER, False),
    ("X-Forwarded-For not configured", PEER, [("X-Forwarded-For", C)], PEER, True),
]


@pytest.mark.parametrize(
    ("case", "peer", "sent", "client", "certain"), FWD_CASES, ids=[c[0] for c in FWD_CASES]
)
def test_forwarded(case: str, peer: str, sent: list[tuple[str, str]], client: str, certain: bool) -> None:
    who = TRUST_FWD.resolve(peer, headers(*sent))

    assert (who.ip, who.certain) == (client, certain)


def test_forwarded_scheme_and_host_come_from_the_clients_own_element() -> None:
    sent = headers(
        ("Forwarded", f"for=1.1.1.1;proto=http;host=evil.example, for={C};proto=https;host=app.example")
    )

    who = TRUST_FWD.resolve(PEER, sent)

    assert (who.scheme, who.host) == ("https", "app.example")


@pytest.mark.parametrize(
    ("proto", "host", "scheme", "seen_host"),
    [
        ("https", "app.example", "https", "app.example"),
        ("http, https", "evil.example, app.example:8443", "https", "app.example:8443"),
        ("javascript", "app.example/x?", None, None),
        ("HTTPS", "x@y", "https", None),
        ("", "", None, None),
    ],
)
def test_forwarded_proto_and_host(proto: str, host: str, scheme: str | None, seen_host: str | None) -> None:
    sent = headers(("X-Forwarded-Proto", proto), ("X-Forwarded-Host", host))

    assert TRUST.resolve(PEER, sent)[4:6] == (scheme, seen_host)
    assert TRUST.resolve(OUTSIDE, sent)[4:6] == (None, None)  # an untrusted peer is not asked


def test_parsers() -> None:
    assert parse_address(" 198.51.100.7 ") is not None
    assert parse_address("") is None
    assert parse_forwarded(['for="_gazonk"', 'For="[2001:db8:cafe::17]:4711"']) == [
        {"for": "_gazonk"},
        {"for": "[2001:db8:cafe::17]:4711"},
    ]
    assert parse_forwarded(["for=192.0.2.60;proto=http;by=203.0.113.43"]) == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}
    ]
    assert parse_forwarded(["for=a;"]) is None


# --- configuration -----------------------------------------------------------------------------


def _load(**extra: Any) -> None:
    load_settings(
        None,
        provider={"issuer_url": "https://id.example", "client_id": "p", "client_secret": "s"},
        cookie={"secret": "x" * 32},
        **extra,
    )


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (
            {"server": {"trusted_proxies": ["10.0.0.1/8"]}},
            "server.trusted_proxies: '10.0.0.1/8' has host bits set",
        ),
        ({"server": {"trusted_proxies": ["nginx"]}}, "server.trusted_proxies: 'nginx' is not an IP network"),
        ({"server": {"forwarded_header": "x-real-ip"}}, "server.forwarded_header"),
        (
            {"server": {"trusted_proxies": ["10.0.0.0/8"], "trust_forwarded_headers": True}},
            "server: trust_forwarded_headers is deprecated: set trusted_proxies only",
        ),
        (
            {"upstreams": [{"url": "http://a", "trusted_ips": ["198.51.100.0/33"]}]},
            "upstreams.0.trusted_ips: '198.51.100.0/33' is not an IP network",
        ),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(extra: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _load(**extra)
    assert needle in str(exc.value)


def test_deprecated_trust_forwarded_headers_trusts_every_peer() -> None:
    settings = load_settings(
        None,
        provider={"issuer_url": "https://id.example", "client_id": "p", "client_secret": "s"},
        cookie={"secret": "x" * 32},
        server={"trust_forwarded_headers": True},
    )
    assert [str(n) for n in settings.server.trusted_networks] == ["0.0.0.0/0", "::/0"]


# --- through the running proxy -----------------------------------------------------------------


async def _echo(proxy_url: str, *sent: tuple[str, str], path: str = "/x") -> tuple[int, CIMultiDict[str]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy_url + path, headers=CIMultiDict(sent), allow_redirects=False) as resp:
            if resp.status != 200:
                return resp.status, CIMultiDict()
            return resp.status, CIMultiDict((await resp.json())["headers"])


async def test_upstream_gets_the_chain_from_the_client_on(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        upstream=upstream,
        server={"trusted_proxies": ["127.0.0.1/32", "10.0.0.0/8"]},
        authorization={"skip_auth_routes": ["^/x$"]},
    )
    status, got = await _echo(
        proxy.url,
        ("X-Forwarded-For", f"6.6.6.6, {C}, 10.0.0.3"),
        ("Forwarded", "for=6.6.6.6"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Forwarded-Host", "app.example"),
        ("X-Forwarded-Proto", "https"),
    )

    assert status == 200
    assert got.getall("X-Forwarded-For") == [f"{C}, 10.0.0.3, 127.0.0.1"]
    assert "Forwarded" not in got and "X-Real-IP" not in got
    assert (got["X-Forwarded-Host"], got["X-Forwarded-Proto"]) == ("app.example", "https")


async def test_untrusted_peer_headers_are_replaced(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        upstream=upstream,
        server={"trusted_proxies": ["10.0.0.0/8"]},  # not the tests' 127.0.0.1
        authorization={"skip_auth_routes": ["^/x$"]},
    )
    status, got = await _echo(
        proxy.url,
        ("X-Forwarded-For", "10.0.0.1"),
        ("X-Forwarded-Host", "evil.example"),
        ("Forwarded", "for=1.1.1.1"),
    )

    assert status == 200
    assert got.getall("X-Forwarded-For") == ["127.0.0.1"]
    assert got["X-Forwarded-Host"].startswith("127.0.0.1:")
    assert "Forwarded" not in got


TRUSTED_IP_CASES: list[tuple[str, list[str], list[tuple[str, str]], bool]] = [
    # (case, server.trusted_proxies, headers sent, passes without sign-in)
    ("untrusted peer, spoofed XFF", [], [("X-Forwarded-For", C)], False),
    ("untrusted peer, spoofed Forwarded", [], [("Forwarded", f"for={C}")], False),
    ("trusted peer vouches for the client", ["127.0.0.1/32"], [("X-Forwarded-For", C)], True),
    (
        "trusted address behind an untrusted hop",
        ["127.0.0.1/32"],
        [("X-Forwarded-For", f"{C}, 203.0.113.5")],
        False,
    ),
    ("chain ending in garbage", ["127.0.0.0/8"], [("X-Forwarded-For", f"{C}, garbage")], False),
    (
        "several XFF headers, spoof last",
        ["127.0.0.1/32"],
        [("X-Forwarded-For", "203.0.113.5"), ("X-Forwarded-For", C)],
        True,
    ),
]


@pytest.mark.parametrize(
    ("case", "trusted", "sent", "passes"), TRUSTED_IP_CASES, ids=[c[0] for c in TRUSTED_IP_CASES]
)
async def test_trusted_ips(
    make_proxy: ProxyFactory,
    fake_provider: FakeProvider,
    upstream: str,
    caplog: pytest.LogCaptureFixture,
    case: str,
    trusted: list[str],
    sent: list[tuple[str, str]],
    passes: bool,
) -> None:
    """ "several XFF headers, spoof last": the proxy in front (127.0.0.1, trusted) appended C itself,
    so C is the client as far as anyone can tell; the table's point is that the decision follows the
    right-most untrusted hop, whatever the client wrote before it."""
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        upstreams=[{"prefix": "/", "url": upstream, "trusted_ips": ["198.51.100.0/24"]}],
        server={"trusted_proxies": trusted},
    )
    forged = [("X-Forwarded-User", "admin"), ("X_Forwarded_Email", "admin@example.com")]
    with caplog.at_level(logging.INFO, logger="proxy"):
        status, got = await _echo(proxy.url, *sent, *forged)

    count = proxy.app[METRICS].trusted_ip_requests.labels("/")._value.get()
    if passes:
        assert status == 200
        assert not any(k.lower().replace("_", "-").startswith("x-forwarded-user") for k in got)
        assert not any("email" in k.lower() for k in got)
        assert count == 1
        assert any(getattr(r, "event", None) == "trusted_ip" and r.client == C for r in caplog.records)
    else:
        assert status in (302, 401)
        assert count == 0


async def test_peer_itself_in_trusted_ips(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        upstreams=[{"prefix": "/", "url": upstream, "trusted_ips": ["127.0.0.1"]}],
    )
    assert (await _echo(proxy.url))[0] == 200


async def test_session_record_and_access_log_name_the_client(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        upstream=upstream,
        server={"trusted_proxies": ["127.0.0.1/32"]},
        as_deployed=True,
    )
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    browser = new_browser()
    browser.headers["X-Forwarded-For"] = f"6.6.6.6, {C}"
    try:
        page = await navigate(browser, proxy.url + "/oauth/start?rd=/oauth/userinfo")
        assert page.status == 200, page.text[:300]
        async with browser.get(proxy.url + "/oauth/sessions") as resp:
            listed = await resp.json()
    finally:
        await browser.close()

    assert [s["ip"] for s in listed["sessions"]] == [C]
    [line] = await access_lines(caplog, "/oauth/sessions")
    assert (line["remote"], line["peer"]) == (C, "127.0.0.1")


def test_forwarded_header_literal() -> None:
    header: ForwardedHeader = "forwarded"
    assert Trust([], header).resolve("1.2.3.4", headers(("Forwarded", "for=5.6.7.8"))).ip == "1.2.3.4"


@pytest.mark.parametrize(("trusted", "public"), [(["10.0.0.0/8"], False), (["127.0.0.1"], True), ([], True)])
async def test_auth_request_front_must_be_a_trusted_proxy(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, trusted: list[str], public: bool
) -> None:
    """/oauth/auth reads the front's headers (auth_request.front) only from a trusted proxy once
    trusted_proxies is set (the tests' peer is 127.0.0.1); others are told nothing, as with front: none."""
    proxy = await make_proxy(
        issuer=fake_provider.issuer,
        authorization={"skip_auth_routes": ["GET=^/public$"]},
        auth_request={"front": "nginx"},
        server={"trusted_proxies": trusted},
    )
    r = await ask(proxy, front_headers("nginx", "GET", "/public"))
    assert r.status == (202 if public else 401)
    redirect = await ask(proxy, front_headers("nginx", "GET", "/private"), "?redirect=1")
    assert redirect.status == (302 if public else 401)


async def test_deprecated_key_is_warned_at_start_up(
    make_proxy: ProxyFactory, fake_provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="proxy"):
        await make_proxy(issuer=fake_provider.issuer, server={"trust_forwarded_headers": True})
    assert any(
        getattr(r, "event", None) == "deprecated" and "server.trusted_proxies" in r.getMessage()
        for r in caplog.records
    )

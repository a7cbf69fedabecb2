"""proxy.cookies: the signed ticket in the session cookie, and the cookies' attributes."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from proxy.config import CookieConfig
from proxy.cookies import CookieCodec
from proxy.login_state import LOGIN_TTL, MAX_PENDING, PendingLogin
from proxy.sessions.base import Ticket

SECRET = "k" * 32
FIXED = Ticket(bytes(range(16)), bytes(range(100, 132)))
B64URL = string.ascii_letters + string.digits + "-_"


def make_codec(lifetime: float = 3600, **cookie: Any) -> CookieCodec:
    return CookieCodec(CookieConfig.model_validate({"secret": SECRET, **cookie}), lifetime)


@pytest.fixture
def codec() -> CookieCodec:
    return make_codec()


def replace_char(text: str, index: int) -> str:
    """``text`` with the character at ``index`` swapped for another base64url character."""
    new = "A" if text[index] != "A" else "B"
    return text[:index] + new + text[index + 1 :]


# --- encode / decode -------------------------------------------------------------------------


def test_round_trip(codec: CookieCodec) -> None:
    ticket = Ticket.new()

    assert codec.decode(codec.encode(ticket)) == ticket


def test_value_is_short_and_cookie_safe(codec: CookieCodec) -> None:
    value = codec.encode(Ticket.new())

    assert len(value.encode()) < 200
    assert re.fullmatch(r"[A-Za-z0-9._-]+", value)


def test_values_differ_per_ticket(codec: CookieCodec) -> None:
    assert codec.encode(Ticket.new()) != codec.encode(Ticket.new())


def _request(cookie: str | None) -> web.Request:
    return make_mocked_request("GET", "/", headers={"Cookie": cookie} if cookie is not None else {})


def test_ticket_from_request(codec: CookieCodec) -> None:
    ticket = Ticket.new()

    assert codec.ticket_from(_request(f"__Host-_auth_proxy={codec.encode(ticket)}; other=x")) == ticket
    assert codec.ticket_from(_request("other=x")) is None
    assert codec.ticket_from(_request(None)) is None


@pytest.mark.parametrize(
    "header",
    [
        "__Host-_auth_proxy=V",
        "a=1; __Host-_auth_proxy=V; b=2",
        "a=1;__Host-_auth_proxy=V;b=2",
        "  __Host-_auth_proxy =  V  ",
        "__Host-_auth_proxy=",
        "__Host-_auth_proxy",
        "x__Host-_auth_proxy=V",
        "__Host-_auth_proxyx=V",
        "_auth_proxy=V",
        "__Host-_auth_proxy=V; __Host-_auth_proxy=W",
        '__Host-_auth_proxy="V"',
        '__Host-_auth_proxy= "V"',
        "__Host-_auth_proxy=V=W",
        "a=b=c; __Host-_auth_proxy=V",
        ";;; __Host-_auth_proxy=V ;;;",
        "",
    ],
)
def test_the_fast_cookie_lookup_agrees_with_aiohttps_parse(codec: CookieCodec, header: str) -> None:
    request = _request(header)

    assert codec.value_in(request) == request.cookies.get("__Host-_auth_proxy")


def test_other_secret_is_refused(codec: CookieCodec) -> None:
    other = CookieCodec(CookieConfig.model_validate({"secret": "o" * 32}), 3600)

    assert other.decode(codec.encode(Ticket.new())) is None


@pytest.mark.parametrize("part", ["payload", "mac"])
def test_tampered_part_is_refused(codec: CookieCodec, part: str) -> None:
    prefix, payload, mac = codec.encode(FIXED).split(".")
    if part == "payload":
        payload = replace_char(payload, len(payload) // 2)
    else:
        mac = replace_char(mac, 0)

    assert codec.decode(f"{prefix}.{payload}.{mac}") is None


def test_tampered_prefix_is_refused(codec: CookieCodec) -> None:
    value = codec.encode(FIXED)

    assert codec.decode("2" + value[1:]) is None
    assert codec.decode(value[2:]) is None


def test_every_single_character_change_in_the_payload_is_refused(codec: CookieCodec) -> None:
    prefix, payload, mac = codec.encode(FIXED).split(".")

    for i in range(len(payload)):
        assert codec.decode(f"{prefix}.{replace_char(payload, i)}.{mac}") is None, i


@pytest.mark.parametrize("keep", [1, 2, 50, 66, 100, -1], ids=lambda k: f"first-{k}")
def test_truncated_value_is_refused(codec: CookieCodec, keep: int) -> None:
    assert codec.decode(codec.encode(FIXED)[:keep]) is None


def test_ticket_of_wrong_length_is_refused(codec: CookieCodec) -> None:
    short = Ticket(FIXED.id, FIXED.secret[:-1])

    assert codec.decode(codec.encode(short)) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        ".",
        "1.",
        "1..",
        "1.a.b.c",
        "1.!!!!.@@@@",
        "1.%%%.***",
        "1.\x00.\x00",
        "1.é.ö",
        "🍪",
        "é" * 50,
        "1." + "A" * 10_000,
    ],
    ids=lambda v: repr(v)[:20],
)
def test_garbage_is_none(codec: CookieCodec, value: str | None) -> None:
    assert codec.decode(value) is None


def test_valid_value_padded_to_10kb_is_refused(codec: CookieCodec) -> None:
    assert codec.decode(codec.encode(FIXED) + "A" * 10_000) is None


@given(st.text())
def test_decode_never_raises_on_text(value: str) -> None:
    assert make_codec().decode(value) is None


@given(st.text(alphabet=B64URL + ".=+/ ", max_size=200))
def test_decode_never_raises_on_near_miss_values(tail: str) -> None:
    assert make_codec().decode("1." + tail) is None


def test_only_the_exact_encoded_value_is_accepted(codec: CookieCodec) -> None:
    value = codec.encode(FIXED)
    prefix, payload, mac = value.split(".")
    variants = [
        *(f"{prefix}.{payload}.{mac[:-1]}{c}" for c in B64URL if c != mac[-1]),
        f"{prefix}.{payload}.{mac[:5]}!!!!{mac[5:]}",
        f"{value}==",
    ]

    assert [v for v in variants if codec.decode(v) is not None] == []


# --- Set-Cookie ------------------------------------------------------------------------------


async def set_cookie_headers(response: web.Response) -> dict[str, dict[str, str]]:
    """Send ``response`` headers to a mocked request; Set-Cookie parsed as name → attributes.

    The value is under ``"value"``; attribute names are lower case; flags map to ``""``.
    """
    await response.prepare(make_mocked_request("GET", "/"))
    cookies: dict[str, dict[str, str]] = {}
    for header in response.headers.getall("Set-Cookie", []):
        first, *attributes = header.split("; ")
        name, _, value = first.partition("=")
        cookies[name] = {"value": value}
        for attribute in attributes:
            key, _, attr_value = attribute.partition("=")
            cookies[name][key.lower()] = attr_value
    return cookies


async def test_set_has_secure_defaults(codec: CookieCodec) -> None:
    response = web.Response()
    codec.set(response, FIXED)

    cookie = (await set_cookie_headers(response))["__Host-_auth_proxy"]

    assert codec.decode(cookie["value"]) == FIXED
    assert cookie["path"] == "/"
    assert cookie["max-age"] == "3600"
    assert cookie["samesite"] == "Lax"
    assert "httponly" in cookie
    assert "secure" in cookie
    assert "domain" not in cookie


async def test_set_follows_the_configuration() -> None:
    codec = make_codec(lifetime=600, secure=False, samesite="strict", domain="example.com", name="sid")
    response = web.Response()
    codec.set(response, FIXED)

    cookie = (await set_cookie_headers(response))["sid"]

    assert "secure" not in cookie
    assert cookie["samesite"] == "Strict"
    assert cookie["domain"] == "example.com"
    assert cookie["max-age"] == "600"
    assert "httponly" in cookie


@pytest.mark.parametrize(
    "config",
    [{}, {"secure": False, "samesite": "strict", "domain": "example.com"}],
    ids=["defaults", "configured"],
)
async def test_clear_expires_with_the_attributes_of_set(config: dict[str, Any]) -> None:
    codec = make_codec(**config)
    set_response, clear_response = web.Response(), web.Response()
    codec.set(set_response, FIXED)
    codec.clear(clear_response)

    was_set = (await set_cookie_headers(set_response))[codec.name]
    cleared = (await set_cookie_headers(clear_response))[codec.name]

    assert cleared["max-age"] == "0"
    assert "1970" in cleared["expires"]
    assert codec.decode(cleared["value"].strip('"')) is None
    for attribute in ("path", "domain", "samesite", "secure", "httponly"):
        assert cleared.get(attribute) == was_set.get(attribute), attribute


LOGIN = PendingLogin("1.state", "n", "v", "https://p.example/oauth/callback", "https://p.example/", 1e9)


@pytest.mark.parametrize("config", [{}, {"domain": "example.com"}], ids=["host", "with-domain"])
async def test_login_cookie_is_host_only_at_the_root(config: dict[str, Any]) -> None:
    """``__Host-``: Secure, Path=/, no Domain, even when the session cookie has one."""
    codec = make_codec(**config)
    response = web.Response()
    codec.set_login(response, _request(None), codec.login_cookie_value(LOGIN), LOGIN.started_at)

    name = codec.login_cookie("1.state")
    cookie = (await set_cookie_headers(response))[name or ""]

    assert name == "__Host-_auth_proxy_login_1"
    assert codec.logins.open(cookie["value"]) == LOGIN
    assert cookie["path"] == "/"
    assert not cookie.get("domain")
    assert cookie["max-age"] == "600"
    assert cookie["samesite"] == "Lax"
    assert "httponly" in cookie
    assert "secure" in cookie


async def test_clear_login_expires_that_login_only() -> None:
    codec = make_codec()
    response = web.Response()
    codec.clear_login(response, "1.state")
    codec.clear_login(response, "no-slot")  # names no cookie: nothing to clear

    cookies = await set_cookie_headers(response)

    assert list(cookies) == ["__Host-_auth_proxy_login_1"]
    cookie = cookies["__Host-_auth_proxy_login_1"]
    assert cookie["path"] == "/"
    assert cookie["max-age"] == "0"
    assert "secure" in cookie
    assert "httponly" in cookie


# --- login slots -------------------------------------------------------------------------------

NOW = LOGIN.started_at + 100


def _login(slot: int, age: float = 0, tag: str = "") -> PendingLogin:
    return PendingLogin(f"{slot}.s{tag}", "n", "v", "https://p/cb", "https://p/", NOW - age)


def _carrying(codec: CookieCodec, *pairs: tuple[str, PendingLogin | str]) -> web.Request:
    values = [(n, v if isinstance(v, str) else codec.logins.seal(v)) for n, v in pairs]
    return _request("; ".join(f"{n}={v}" for n, v in values) or None)


def test_the_slots_are_a_fixed_few(codec: CookieCodec) -> None:
    assert codec.login_slots == tuple(f"__Host-_auth_proxy_login_{i}" for i in range(MAX_PENDING))
    assert all(name in codec.names for name in codec.login_slots)  # never passed upstream


def test_a_new_login_takes_a_free_slot(codec: CookieCodec) -> None:
    held = _carrying(codec, (codec.login_slots[0], _login(0)))
    chosen = {codec.login_slot_for(held, NOW) for _ in range(200)}

    assert chosen == set(range(1, MAX_PENDING))  # any free one (random), never the held one
    assert {codec.login_slot_for(_request(None), NOW) for _ in range(200)} == set(range(MAX_PENDING))


def test_with_every_slot_held_the_oldest_login_gives_way(codec: CookieCodec) -> None:
    ages = [30, 500, 10]
    pairs = [(codec.login_slots[i], _login(i, ages[i % 3])) for i in range(MAX_PENDING)]

    assert codec.login_slot_for(_carrying(codec, *pairs), NOW) == 1


@pytest.mark.parametrize(
    "value",
    ["junk", _login(0, age=LOGIN_TTL + 1), _login(1)],
    ids=["unreadable", "expired", "a login of another slot"],
)
def test_a_slot_holding_no_live_login_of_its_own_is_free(
    codec: CookieCodec, value: PendingLogin | str
) -> None:
    others = [(codec.login_slots[i], _login(i)) for i in range(1, MAX_PENDING)]
    request = _carrying(codec, (codec.login_slots[0], value), *others)

    assert codec.login_slot_for(request, NOW) == 0


async def test_set_login_expires_what_no_live_slot_holds(codec: CookieCodec) -> None:
    slots = codec.login_slots
    request = _carrying(
        codec,
        (slots[0], _login(0, tag="kept")),
        (slots[1], "junk"),
        ("__Host-_auth_proxy_login_0123456789ab", _login(2)),  # an earlier version's name
        ("app", "1"),
    )
    response = web.Response()
    codec.set_login(response, request, codec.login_cookie_value(_login(2, tag="new")), NOW)

    cookies = await set_cookie_headers(response)

    assert cookies[slots[2]]["max-age"] == "600"
    assert cookies[slots[1]]["max-age"] == "0"
    assert cookies["__Host-_auth_proxy_login_0123456789ab"]["max-age"] == "0"
    assert slots[0] not in cookies and "app" not in cookies


def test_pending_login_reads_only_the_slot_its_state_names(codec: CookieCodec) -> None:
    mine, later = _login(0, tag="mine"), _login(0, tag="later")

    assert codec.pending_login(_carrying(codec, (codec.login_slots[0], mine)), mine.state) == mine
    assert codec.pending_login(_carrying(codec, (codec.login_slots[0], later)), mine.state) is None
    assert codec.pending_login(_carrying(codec, (codec.login_slots[1], mine)), mine.state) is None
    assert codec.pending_login(_carrying(codec, (codec.login_slots[0], mine)), "s.mine") is None


def test_a_login_without_a_slot_is_refused_at_sealing(codec: CookieCodec) -> None:
    with pytest.raises(ValueError, match="names its slot"):
        codec.login_cookie_value(PendingLogin("no-slot", "n", "v", "r", "t", NOW))

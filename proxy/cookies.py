"""The session cookie: a signed opaque ticket (~110 bytes whatever the tokens weigh), and the
short-lived login cookies, a few fixed slots each holding one pending login sealed (``proxy.login_state``).

Names: with ``secure`` the session cookie is ``__Host-<name>`` (``__Secure-<name>`` when a ``domain``
is set) and each login cookie ``__Host-<name>_login_<slot>`` (Path=/, never a Domain: only
the host that started a login finishes it). Browsers accept such a cookie only over https, with
Secure, and ``__Host-`` only without a Domain and with Path=/, so neither a plain-http page nor a
sibling subdomain can plant or overwrite ours; a login cookie under any other name is ignored.

Secrets rotate: ``cookie.secret`` may list several; the first signs, every one verifies. The same
keys make the sign-out CSRF token: an HMAC of the session id, so it needs no storage and dies with
the session.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import CookieConfig
from .login_state import LOGIN_TTL, MAX_PENDING, LoginSealer, PendingLogin, login_slot
from .sessions.base import Ticket

_PREFIX = "1."
_MAC_BYTES = 32
_MAX_VALUE = 256
"""Anything longer can't be ours: rejected before any work is done on it."""
_MEMO = 16_384
"""Cookie values whose verdict is remembered (a few MB at most): a browser sends the same value with
every request, and checking it (base64, HMAC) was the largest single cost of a session check."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def cookie_name(name: str, *, secure: bool, host_only: bool) -> str:
    """``name`` with the prefix browsers enforce: ``__Host-`` (Secure, no Domain, Path=/) when
    ``host_only``, else ``__Secure-`` (Secure); unprefixed when not ``secure``."""
    if not secure:
        return name
    return ("__Host-" if host_only else "__Secure-") + name


class CookieNames(frozenset[str]):
    """Names of our cookies: these exact names, and every name that starts with one of ``prefixes``
    (the login cookies, and those of earlier versions). ``in`` answers for both."""

    prefixes: tuple[str, ...]

    def __new__(cls, names: frozenset[str], prefixes: tuple[str, ...]) -> CookieNames:
        self = super().__new__(cls, names)
        self.prefixes = prefixes
        return self

    def __contains__(self, name: object) -> bool:
        if frozenset.__contains__(self, name):
            return True
        return isinstance(name, str) and name.startswith(self.prefixes)


class CookieCodec:
    def __init__(self, config: CookieConfig, lifetime: float) -> None:
        self.config = config
        self.name = cookie_name(config.name, secure=config.secure, host_only=config.domain is None)
        self.login_name = cookie_name(f"{config.name}_login", secure=config.secure, host_only=True)
        """The login cookies are this, ``_`` and a slot (``0`` to ``MAX_PENDING - 1``)."""
        self.login_slots = tuple(f"{self.login_name}_{i}" for i in range(MAX_PENDING))
        old_login = {f"{config.name}_login", f"__Secure-{config.name}_login"}  # (the single binding cookie)
        self.names = CookieNames(
            frozenset({self.name, config.name, self.login_name, *old_login}),
            tuple(sorted({f"{n}_" for n in (self.login_name, *old_login)})),
        )
        """Every name our cookies have or had (before the prefixes): never passed to upstreams."""
        self._lifetime = int(lifetime)
        self.logins = LoginSealer(config.secrets_bytes)
        self._mac_keys = tuple(_derive(s, b"auth-proxy cookie mac v1") for s in config.secrets_bytes)
        self._csrf_keys = tuple(_derive(s, b"auth-proxy csrf v1") for s in config.secrets_bytes)
        self._decode_memo = functools.lru_cache(maxsize=_MEMO)(self._decode)
        self._csrf_memo = functools.lru_cache(maxsize=_MEMO)(self._csrf_first)
        """Per codec (per set of secrets), so a rotation never reuses an old verdict."""

    # --- the session ticket ------------------------------------------------------------------

    @staticmethod
    def _mac(key: bytes, payload: str) -> bytes:
        return hmac.new(key, payload.encode(), hashlib.sha256).digest()

    def encode(self, ticket: Ticket) -> str:
        payload = _PREFIX + _b64e(ticket.id + ticket.secret)
        return payload + "." + _b64e(self._mac(self._mac_keys[0], payload))

    def decode(self, value: str | None) -> Ticket | None:
        """The ticket in a cookie value, or ``None`` for anything not signed by us. The verdict
        depends on nothing but the value and the secrets, so it is memoised."""
        if not value or len(value) > _MAX_VALUE or not value.startswith(_PREFIX):
            return None
        return self._decode_memo(value)

    def _decode(self, value: str) -> Ticket | None:
        payload, _, mac = value.rpartition(".")
        try:
            raw, mac_raw = _b64d(payload[len(_PREFIX) :]), _b64d(mac)
        except (binascii.Error, ValueError):
            return None
        if not any(hmac.compare_digest(mac_raw, self._mac(key, payload)) for key in self._mac_keys):
            return None
        if _b64e(raw) != payload[len(_PREFIX) :] or _b64e(mac_raw) != mac:
            return None  # one value, one spelling: b64decode tolerates stray characters and padding
        if len(raw) != Ticket.ID_BYTES + Ticket.SECRET_BYTES:
            return None
        return Ticket(raw[: Ticket.ID_BYTES], raw[Ticket.ID_BYTES :])

    def ticket_from(self, request: web.BaseRequest) -> Ticket | None:
        """The ticket in the request's session cookie, ``None`` without a valid one."""
        return self.decode(self.value_in(request))

    def value_in(self, request: web.BaseRequest) -> str | None:
        """The session cookie's value. Fast path: the one plain ``name=value`` pair of ours in the
        ``Cookie`` header, found without aiohttp's parse into ``Morsel`` objects (a tenth of a
        session check's cost). Anything unusual (the name twice, a quoted value) gets the full parse,
        so the answer is always the one ``request.cookies`` gives."""
        header = request.headers.get("Cookie")
        if not header:
            return None
        found: str | None = None
        for pair in header.split(";"):
            name, eq, value = pair.partition("=")
            if name.strip() == self.name:
                if not eq or found is not None or value.lstrip()[:1] == '"':
                    return request.cookies.get(self.name)
                found = value.strip()
        return found

    # --- the sign-out CSRF token -------------------------------------------------------------

    @staticmethod
    def _csrf(key: bytes, ticket: Ticket) -> str:
        return _b64e(hmac.new(key, b"sign-out:" + ticket.id, hashlib.sha256).digest())

    def csrf_token(self, ticket: Ticket) -> str:
        """The token a sign-out POST of this session must carry (43 characters, URL-safe). Goes
        upstream with every proxied request, so it is memoised like the cookie verdicts."""
        return self._csrf_memo(ticket)

    def _csrf_first(self, ticket: Ticket) -> str:
        return self._csrf(self._csrf_keys[0], ticket)

    def csrf_valid(self, ticket: Ticket, token: str) -> bool:
        given = token.encode()
        return any(hmac.compare_digest(given, self._csrf(key, ticket).encode()) for key in self._csrf_keys)

    def set(self, response: web.StreamResponse, ticket: Ticket) -> None:
        self._set(response, self.name, self.encode(ticket), self._lifetime, "/", self.config.domain)

    def clear(self, response: web.StreamResponse) -> None:
        """Expire the cookie with the same attributes it was set with (else browsers keep it)."""
        self._del(response, self.name, "/", self.config.domain)

    # --- the pending logins ------------------------------------------------------------------

    def login_cookie(self, state: str) -> str | None:
        """The name of the cookie (the slot) that holds the login started with ``state``; ``None``
        for a state that names no slot (not one of ours)."""
        slot = login_slot(state)
        return None if slot is None else self.login_slots[slot]

    def pending_login(self, request: web.BaseRequest, state: str) -> PendingLogin | None:
        """The login this browser started with ``state``: the cookie of its slot opens under one of
        our secrets and holds exactly this state (not a later login that took the slot). (Its age is
        for the caller to judge.)"""
        name = self.login_cookie(state)
        value = request.cookies.get(name) if name else None
        login = self.logins.open(value) if value else None
        if login is None or not secrets.compare_digest(login.state.encode(), state.encode()):
            return None
        return login

    def _held_logins(self, request: web.BaseRequest, now: float) -> dict[str, float]:
        """The slots this request carries a live login in (name → when it started)."""
        held: dict[str, float] = {}
        for name in self.login_slots:
            value = request.cookies.get(name)
            login = self.logins.open(value) if value else None
            if login is not None and login.fresh(now) and self.login_cookie(login.state) == name:
                held[name] = login.started_at
        return held

    def login_slot_for(self, request: web.BaseRequest, now: float) -> int:
        """The slot a new login takes: a free one (chosen at random, so starts made at the same
        instant, which each see only the cookies sent before, rarely take the same), else the one
        whose login is the oldest."""
        held = self._held_logins(request, now)
        free = [i for i, name in enumerate(self.login_slots) if name not in held]
        if free:
            return secrets.choice(free)
        return self.login_slots.index(min(held, key=held.__getitem__))

    def login_cookie_value(self, login: PendingLogin) -> tuple[str, str]:
        name = self.login_cookie(login.state)
        if name is None:
            raise ValueError("a login's state names its slot (login_state.new_state)")
        return name, self.logins.seal(login)

    def set_login(
        self, response: web.StreamResponse, request: web.BaseRequest, cookie: tuple[str, str], now: float
    ) -> None:
        """Put a pending login's cookie in its slot (replacing whatever was there), and expire the
        other login cookies the request carries that are unreadable, stale or in the wrong slot,
        and any under our login prefix that is no slot (junk, or an earlier version's)."""
        name, value = cookie
        family, held = self.login_name + "_", self._held_logins(request, now)
        for other in request.cookies:
            if other.startswith(family) and other != name and other not in held:
                self._del(response, other, "/", None)
        self._set(response, name, value, LOGIN_TTL, "/", None)

    def clear_login(self, response: web.StreamResponse, state: str) -> None:
        name = self.login_cookie(state)
        if name is not None:
            self._del(response, name, "/", None)

    def _set(
        self, response: web.StreamResponse, name: str, value: str, max_age: int, path: str, domain: str | None
    ) -> None:
        c = self.config
        response.set_cookie(
            name, value, max_age=max_age, path=path, domain=domain, secure=c.secure,
            httponly=True, samesite=c.samesite.capitalize(),
        )  # fmt: skip

    def _del(self, response: web.StreamResponse, name: str, path: str, domain: str | None) -> None:
        c = self.config
        response.del_cookie(
            name, path=path, domain=domain, secure=c.secure, httponly=True, samesite=c.samesite.capitalize()
        )

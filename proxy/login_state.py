"""A started login, sealed into the browser's login cookie: nothing is stored server-side.

``/start`` seals what ``/callback`` needs (state, nonce, PKCE verifier, redirect URI, where to return,
when it started) with AES-256-GCM under a key derived from ``cookie.secret`` (HKDF, its own ``info``,
so neither a session cookie nor a session record opens as a login, nor the reverse). An anonymous
``/start`` therefore costs the server nothing but CPU: no store write, no memory that grows.

The callback trusts a login only if its cookie opens under one of the configured secrets (the first
seals; every one opens, so a rotation keeps pending logins), names the ``state`` the provider sent
back (``secrets.compare_digest``) and is younger than :data:`LOGIN_TTL`.

Slots: a browser holds at most :data:`MAX_PENDING` login cookies, whatever the concurrency, because
there are only that many names: ``<name>_login_<slot>``. ``/start`` takes a free slot (a random one,
so tabs started at the same instant rarely meet), else the one holding the oldest login, and writes
the slot into the state (``<slot>.<random>``) so the callback reads one cookie. Each is at most
:data:`MAX_COOKIE_BYTES`, so together they stay within :data:`PENDING_BYTES` and an attacker can't
grow a victim's ``Cookie`` header past what the front proxy accepts, not even with many ``/start``
requests at once (each judges only the cookies it carries). A login whose slot another start took
meanwhile is refused ("Please sign in again"); the other login keeps the slot.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .sessions.crypto import open_with, seal_with

LOGIN_TTL = 600
"""Seconds a started login may take (the cookie's Max-Age, and the age the callback accepts)."""
CLOCK_SKEW = 60
"""A login stamped this far in the future is still accepted (replicas' clocks differ a little)."""
MAX_RD_BYTES = 1024
"""The longest ``rd`` (return address) ``/start`` accepts: 400 beyond. With the rest of a login (about
600 bytes sealed and named) it fits in :data:`MAX_COOKIE_BYTES` with room for a long host name."""
MAX_PENDING = 3
"""Pending logins (tabs) a browser keeps at once: the number of login cookie slots. A fourth start
takes the slot of the oldest."""
MAX_COOKIE_BYTES = 2000
"""A login cookie (name and value) never exceeds this: ``/start`` answers 400 instead."""
PENDING_BYTES = 6144
"""What all login cookies together can add to a ``Cookie`` header (names, values, ``=`` and ``; ``):
under nginx's default 8 kB per header line, with room for the session cookie and the app's."""
_AAD = b"auth-proxy login state v1"
_MAX_VALUE = 8192
"""Anything longer can't be ours: refused before base64 or AES run."""


@dataclass(frozen=True)
class PendingLogin:
    """What ``/start`` hands to ``/callback`` through the browser."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    return_to: str
    started_at: float
    """Epoch seconds of the ``/start`` that made it."""
    provider: str | None = None
    """The id of the provider the login was sent to: the callback completes it only with that
    provider (its token endpoint, keys and issuer), whatever the answer claims (mix-up)."""
    params: tuple[tuple[str, str], ...] = ()
    """The extra authorization parameters sent (passed through from ``/start``'s query, or the
    step-up ``acr_values``); the callback records the requested ``acr_values`` in the session."""

    def age(self, now: float) -> float:
        return now - self.started_at

    def fresh(self, now: float) -> bool:
        return -CLOCK_SKEW <= self.age(now) <= LOGIN_TTL


_SLOTS = tuple(str(i) for i in range(MAX_PENDING))


def new_state(slot: int) -> str:
    """A fresh ``state`` for a login kept in ``slot``: ``<slot>.<256 random bits>``."""
    return f"{_SLOTS[slot]}.{secrets.token_urlsafe(32)}"


def login_slot(state: str) -> int | None:
    """The slot a ``state`` names, ``None`` if it names none (not one of ours)."""
    head, dot, rest = state.partition(".")
    return int(head) if dot and rest and head in _SLOTS else None


class LoginSealer:
    """Seals and opens :class:`PendingLogin` values with keys derived from every cookie secret."""

    def __init__(self, secrets: tuple[bytes, ...]) -> None:
        self._keys = [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AAD).derive(s) for s in secrets
        ]

    def seal(self, login: PendingLogin) -> str:
        plain = json.dumps(
            [login.state, login.nonce, login.code_verifier, login.redirect_uri, login.return_to,
             round(login.started_at, 3), login.provider, [list(p) for p in login.params]],
            separators=(",", ":"), ensure_ascii=False,
        ).encode()  # fmt: skip
        return base64.urlsafe_b64encode(seal_with(self._keys[0], _AAD, plain)).rstrip(b"=").decode()

    def open(self, value: str) -> PendingLogin | None:
        """The login sealed in ``value``, or ``None`` for anything we did not seal (forged,
        tampered, truncated, sealed under a secret no longer configured, not base64)."""
        if not value or len(value) > _MAX_VALUE or not value.isascii():
            return None
        try:
            blob = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return None
        plain = open_with(self._keys, _AAD, blob)
        if plain is None:
            return None
        try:
            items = json.loads(plain)
            state, nonce, verifier, redirect_uri, return_to, started = items[:6]
            # logins sealed before several providers have six items: the default provider's
            provider, params = items[6:8] if len(items) == 8 else (None, [])
            pairs = tuple((str(k), str(v)) for k, v in params)
        except (ValueError, TypeError, KeyError):
            return None
        texts = (state, nonce, verifier, redirect_uri, return_to)
        if not all(isinstance(t, str) for t in texts) or not isinstance(started, (int, float)):
            return None
        if provider is not None and not isinstance(provider, str):
            return None
        return PendingLogin(state, nonce, verifier, redirect_uri, return_to, float(started), provider, pairs)

"""A started login, sealed into the browser's login cookie: nothing is stored server-side.

``/start`` seals what ``/callback`` needs (state, nonce, PKCE verifier, redirect URI, where to return,
when it started) with AES-256-GCM under a key derived from ``cookie.secret`` (HKDF, its own ``info``,
so neither a session cookie nor a session record opens as a login, nor the reverse). An anonymous
``/start`` therefore costs the server nothing but CPU: no store write, no memory that grows.

The callback trusts a login only if its cookie opens under one of the configured secrets (the first
seals; every one opens, so a rotation keeps pending logins), names the ``state`` the provider sent
back (``secrets.compare_digest``) and is younger than :data:`LOGIN_TTL`. Each pending login has its
own cookie, named after a short hash of its state (parallel tabs), and the browser keeps at most
:data:`MAX_PENDING` of them within :data:`PENDING_BYTES` (the oldest are expired first), so an
attacker can't grow a victim's ``Cookie`` header past what the front proxy accepts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .sessions.crypto import open_with, seal_with

LOGIN_TTL = 600
"""Seconds a started login may take (the cookie's Max-Age, and the age the callback accepts)."""
CLOCK_SKEW = 60
"""A login stamped this far in the future is still accepted (replicas' clocks differ a little)."""
MAX_RD_BYTES = 2048
"""The longest ``rd`` (return address) ``/start`` accepts: 400 beyond, so a login cookie stays well
under the ~4 kB browsers keep per cookie."""
MAX_COOKIE_BYTES = 4000
"""A login cookie (name and value) never exceeds this (browsers drop cookies over 4096 bytes)."""
MAX_PENDING = 4
"""Pending logins (tabs) a browser keeps at once; a fifth start expires the oldest."""
PENDING_BYTES = 6144
"""Their total size (names and values): two logins with the longest ``rd`` don't fit together, so
the ``Cookie`` header stays under nginx's default 8 kB per header line."""
SUFFIX_CHARS = 12
"""Hex characters of SHA-256(state) in a login cookie's name."""
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

    def age(self, now: float) -> float:
        return now - self.started_at

    def fresh(self, now: float) -> bool:
        return -CLOCK_SKEW <= self.age(now) <= LOGIN_TTL


def login_suffix(state: str) -> str:
    """The part of a login cookie's name that says which login it holds."""
    return hashlib.sha256(state.encode()).hexdigest()[:SUFFIX_CHARS]


class LoginSealer:
    """Seals and opens :class:`PendingLogin` values with keys derived from every cookie secret."""

    def __init__(self, secrets: tuple[bytes, ...]) -> None:
        self._keys = [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AAD).derive(s) for s in secrets
        ]

    def seal(self, login: PendingLogin) -> str:
        plain = json.dumps(
            [login.state, login.nonce, login.code_verifier, login.redirect_uri, login.return_to,
             round(login.started_at, 3)],
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
            state, nonce, verifier, redirect_uri, return_to, started = json.loads(plain)
        except (ValueError, TypeError):
            return None
        texts = (state, nonce, verifier, redirect_uri, return_to)
        if not all(isinstance(t, str) for t in texts) or not isinstance(started, (int, float)):
            return None
        return PendingLogin(state, nonce, verifier, redirect_uri, return_to, float(started))

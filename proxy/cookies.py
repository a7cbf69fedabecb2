"""The session cookie: a signed opaque ticket (~110 bytes whatever the tokens weigh), and the
short-lived login cookie that binds a login's ``state`` to the browser that started it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import CookieConfig
from .sessions.base import Ticket

_PREFIX = "1."
_MAC_BYTES = 32
_MAX_VALUE = 256
"""Anything longer can't be ours: rejected before any work is done on it."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieCodec:
    def __init__(self, config: CookieConfig, lifetime: float, login_path: str) -> None:
        self.config = config
        self.name = config.name
        self.login_name = f"{config.name}_login"
        self._lifetime = int(lifetime)
        self._login_path = login_path
        self._mac_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"auth-proxy cookie mac v1"
        ).derive(config.secret_bytes)

    # --- the session ticket ------------------------------------------------------------------

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._mac_key, payload.encode(), hashlib.sha256).digest()

    def encode(self, ticket: Ticket) -> str:
        payload = _PREFIX + _b64e(ticket.id + ticket.secret)
        return payload + "." + _b64e(self._mac(payload))

    def decode(self, value: str | None) -> Ticket | None:
        """The ticket in a cookie value, or ``None`` for anything not signed by us."""
        if not value or len(value) > _MAX_VALUE or not value.startswith(_PREFIX):
            return None
        payload, _, mac = value.rpartition(".")
        try:
            raw, mac_raw = _b64d(payload[len(_PREFIX) :]), _b64d(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac_raw, self._mac(payload)):
            return None
        if _b64e(raw) != payload[len(_PREFIX) :] or _b64e(mac_raw) != mac:
            return None  # one value, one spelling: b64decode tolerates stray characters and padding
        if len(raw) != Ticket.ID_BYTES + Ticket.SECRET_BYTES:
            return None
        return Ticket(raw[: Ticket.ID_BYTES], raw[Ticket.ID_BYTES :])

    def ticket_from(self, cookies: Mapping[str, str]) -> Ticket | None:
        return self.decode(cookies.get(self.name))

    def set(self, response: web.StreamResponse, ticket: Ticket) -> None:
        self._set(response, self.name, self.encode(ticket), self._lifetime, "/")

    def clear(self, response: web.StreamResponse) -> None:
        """Expire the cookie with the same attributes it was set with (else browsers keep it)."""
        self._del(response, self.name, "/")

    # --- the login binding -------------------------------------------------------------------

    def set_login(self, response: web.StreamResponse, value: str, max_age: int) -> None:
        self._set(response, self.login_name, value, max_age, self._login_path)

    def clear_login(self, response: web.StreamResponse) -> None:
        self._del(response, self.login_name, self._login_path)

    def _set(self, response: web.StreamResponse, name: str, value: str, max_age: int, path: str) -> None:
        c = self.config
        response.set_cookie(
            name, value, max_age=max_age, path=path, domain=c.domain, secure=c.secure,
            httponly=True, samesite=c.samesite.capitalize(),
        )  # fmt: skip

    def _del(self, response: web.StreamResponse, name: str, path: str) -> None:
        c = self.config
        response.del_cookie(
            name, path=path, domain=c.domain, secure=c.secure, httponly=True, samesite=c.samesite.capitalize()
        )

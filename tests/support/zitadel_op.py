"""The second real OpenID provider: zitadel/oidc's example OP (``scripts/zitadel-op.sh``), and a
scripted browser's way through its login form.

The OP's ``web`` client matches redirect URIs exactly (no wildcards), so the session's OP is started
with a callback URL on each of a few ports picked up front; a test runs its proxy (or its nginx) on
the first of them that is free at that moment (:meth:`ZitadelOP.callback_port`)."""

from __future__ import annotations

import html
import re
import socket
from dataclasses import dataclass

import aiohttp

from tests.support.browser import Page, navigate

CLIENT_ID = "web"
CLIENT_SECRET = "secret"
SCOPES = ["openid", "email", "profile", "offline_access"]
"""``offline_access``: this OP issues a refresh token only when it is asked for."""
_ID_INPUT = re.compile(r'<input type="hidden" name="id" value="([^"]*)">')


@dataclass(frozen=True)
class ZitadelOP:
    issuer: str
    """``http://localhost:PORT/``: the example's issuer always names localhost and ends in ``/``."""
    ports: tuple[int, ...]
    """Ports with a registered callback ``http://127.0.0.1:PORT/oauth/callback``."""

    def callback_port(self) -> int:
        """One of :attr:`ports` that nothing listens on right now."""
        for port in self.ports:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError(f"every registered callback port is taken: {self.ports}")

    def provider_config(self, **extra: object) -> dict[str, object]:
        """``make_proxy`` keywords for this OP's ``web`` client."""
        return {
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "provider": {"scopes": SCOPES, **extra},
            # the web client registers no post-logout redirect URI and refuses any it is sent
            "logout": {"send_post_logout_redirect_uri": False},
        }


def is_login_form(page: Page) -> bool:
    return 'action="/login/username"' in page.text


async def submit_login(browser: aiohttp.ClientSession, page: Page, username: str, password: str) -> Page:
    """Fill in the OP's login form (``/login/username``: ``id``, ``username``, ``password``)."""
    assert is_login_form(page), f"expected the OP's login form at {page.url}, got {page.status}"
    found = _ID_INPUT.search(page.text)
    assert found, page.text[:500]
    action = page.url.split("/login/")[0] + "/login/username"
    data = {"id": html.unescape(found.group(1)), "username": username, "password": password}
    return await navigate(browser, action, method="POST", data=data)

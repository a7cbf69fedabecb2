"""Session fixation: whatever session cookie a browser carries into a login, it leaves with a new
session id, and the old session (if it was one) is gone.

  no cookie                                → a new session
  a planted garbage value                  → a new session
  a planted valid-looking ticket of no session (signed: an old secret's holder could forge one)
                                           → a new session, not that id
  the attacker's own live session, planted → a new session; the attacker's cookie no longer works
  the user's own session (signing in again) → a new id, the old one deleted: the same mechanics as
    the row above, and tests/handlers/test_auth.py::test_login_again_replaces_the_old_session
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from yarl import URL

from proxy.keys import COOKIES
from proxy.sessions.base import Ticket
from tests.conftest import RunningProxy
from tests.security.conftest import is_live, treated_as_nobody
from tests.support.browser import navigate, new_browser
from tests.support.login import session_cookie, signed_in_browser


async def _none(proxy: RunningProxy) -> str | None:
    return None


async def _garbage(proxy: RunningProxy) -> str | None:
    return "attacker-chosen-value"


async def _signed_no_session(proxy: RunningProxy) -> str | None:
    return proxy.app[COOKIES].encode(Ticket.new())


async def _attackers_live_session(proxy: RunningProxy) -> str | None:
    async with await signed_in_browser(proxy.url) as attacker:
        return session_cookie(attacker)


PLANTED: dict[str, Callable[[RunningProxy], Awaitable[str | None]]] = {
    "no cookie": _none,
    "garbage": _garbage,
    "signed ticket of no session": _signed_no_session,
    "the attacker's live session": _attackers_live_session,
}


@pytest.mark.parametrize("case", list(PLANTED))
async def test_login_always_gets_a_new_id_and_ends_the_old(proxy: RunningProxy, case: str) -> None:
    planted = await PLANTED[case](proxy)
    async with new_browser() as victim:
        if planted is not None:
            victim.cookie_jar.update_cookies({"_auth_proxy": planted}, URL(proxy.url))
        page = await navigate(victim, proxy.url + "/oauth/start?rd=/oauth/userinfo")
        assert page.status == 200
        fresh = session_cookie(victim)

    assert fresh != planted
    assert await is_live(proxy, fresh)
    if planted is not None:
        await treated_as_nobody(proxy, f"_auth_proxy={planted}")
        planted_ticket = proxy.app[COOKIES].decode(planted)
        fresh_ticket = proxy.app[COOKIES].decode(fresh)
        assert fresh_ticket is not None
        assert planted_ticket is None or planted_ticket.id != fresh_ticket.id

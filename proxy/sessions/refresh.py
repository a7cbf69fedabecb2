"""Keeping a session's tokens fresh: one refresh per session across every replica.

When the access token is about to expire, the first request takes the session's lock in the store
(``SET NX EX``), re-reads the session (another replica may have refreshed it meanwhile), refreshes
and saves. Requests that find the lock taken wait for the refreshed session; if the holder gave up
(the provider was down), one of them takes the lock and tries itself. Outcomes:

    refreshed                 the request goes on with the new tokens
    invalid_grant/_client     the provider ended it: the session is deleted, the user signs in again
    provider unreachable      ProviderUnavailable (503) for this request; the session is kept
    ended meanwhile           a logout (back-channel, sign-out, ended from another device) landed
                              while the provider answered: the save writes nothing (it only
                              replaces a session that still exists), the request is not signed in
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from aiohttp import web

from ..errors import ProviderUnavailable
from ..keys import PROVIDERS, SETTINGS, STORE
from ..metrics import record_logout, record_refresh
from ..oidc.bearer import login_identity
from ..oidc.client import TokenRequestRefused, refresh_tokens
from ..oidc.tokens import verify_id_token
from .base import Session, Ticket

log = logging.getLogger(__name__)

LOCK_SECONDS = 10
WAIT_STEP = 0.025
ENDING_ERRORS = frozenset({"invalid_grant", "invalid_client"})


def refresh_due(app: web.Application, session: Session) -> bool:
    """Whether ``session``'s access token should be refreshed now (then :func:`fresh`)."""
    if session.refresh_token is None:
        return False
    return session.needs_refresh(time.time(), app[SETTINGS].session.refresh_skew)


async def fresh(app: web.Application, ticket: Ticket, session: Session) -> Session | None:
    """``session`` with usable tokens, or ``None`` when the provider has ended it."""
    if not refresh_due(app, session):
        return session
    store = app[STORE]
    deadline = time.monotonic() + LOCK_SECONDS
    while True:
        token = await store.try_lock(ticket, LOCK_SECONDS)
        if token is not None:
            try:
                current = await store.load(ticket, cached=False)  # re-read under the lock
                if current is None or not refresh_due(app, current):
                    return current
                try:
                    return await _refresh(app, ticket, current)
                except Exception:
                    record_refresh(app, "error")  # provider unreachable, bad token, store down
                    raise
            finally:
                await store.unlock(ticket, token)
        await asyncio.sleep(WAIT_STEP)
        current = await store.load(ticket, cached=False)
        if current is None or not refresh_due(app, current):
            return current
        if time.monotonic() > deadline:
            raise ProviderUnavailable("another request's token refresh did not finish in time")


async def _refresh(app: web.Application, ticket: Ticket, session: Session) -> Session | None:
    store, entry = app[STORE], app[PROVIDERS].of_session(session.provider)
    provider, client = entry.discovery, entry.client
    assert session.refresh_token is not None
    try:
        tokens = await refresh_tokens(entry.http, provider.metadata, client, session.refresh_token)
    except TokenRequestRefused as exc:
        if exc.error not in ENDING_ERRORS:
            raise ProviderUnavailable(f"token refresh refused: {exc.error}") from None
        await store.delete(ticket, session)
        log.info(
            "refresh refused, session ended",
            extra={
                "event": "logout",
                "kind": "refresh_failure",
                "sub": session.identity.sub,
                "error": exc.error,
            },
        )
        record_refresh(app, "ended")
        record_logout(app, "refresh_failure")
        return None
    identity, id_token, acr = session.identity, session.id_token, session.acr
    if tokens.id_token is not None:
        claims = await verify_id_token(
            provider,
            tokens.id_token,
            client_id=client.client_id,
            nonce=None,
            access_token=tokens.access_token,
        )
        if claims["sub"] != session.identity.sub:
            await store.delete(ticket, session)
            log.warning(
                "refreshed ID token names another subject; session ended", extra={"event": "refresh_bad"}
            )
            record_refresh(app, "ended")
            return None
        identity = login_identity(app[SETTINGS].authorization, claims, tokens.access_token)
        id_token = tokens.id_token
        acr = claims["acr"] if isinstance(claims.get("acr"), str) else session.acr
    now = time.time()
    renewed = replace(
        session,
        identity=identity,
        id_token=id_token,
        acr=acr,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token or session.refresh_token,
        access_expires_at=now + tokens.expires_in if tokens.expires_in else None,
        refresh_expires_at=now + tokens.refresh_expires_in
        if tokens.refresh_expires_in
        else session.refresh_expires_at,
    )
    if not await store.save(ticket, renewed):  # ended while the provider answered: stays ended
        log.info(
            "session ended during its token refresh; the refreshed tokens are dropped",
            extra={"event": "refresh_dropped", "sub": identity.sub},
        )
        record_refresh(app, "ended")
        return None
    log.info("tokens refreshed", extra={"event": "refresh", "sub": identity.sub})
    record_refresh(app, "success")
    return renewed

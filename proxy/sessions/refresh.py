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
from dataclasses import dataclass, replace

from ..config.access import AuthorizationConfig
from ..errors import ProviderUnavailable
from ..metrics_registry import Metrics
from ..oidc.bearer import login_identity
from ..oidc.client import TokenRequestRefused, refresh_tokens
from ..oidc.providers import Providers
from ..oidc.tokens import verify_id_token
from ..oidc.userinfo import with_userinfo
from .base import Session, Ticket
from .guards import Lock
from .store import SessionStore

log = logging.getLogger(__name__)

LOCK_SECONDS = 10
WAIT_STEP = 0.025
ENDING_ERRORS = frozenset({"invalid_grant", "invalid_client"})


@dataclass(frozen=True)
class Refresher:
    """Everything a refresh uses, handed in by the composition root (``proxy.app``)."""

    store: SessionStore
    lock: Lock
    providers: Providers
    """Each session is refreshed at its own provider (its client, keys, HTTP client)."""
    authorization: AuthorizationConfig
    skew: float
    """Refresh this long before the access token expires (``session.refresh_skew``)."""
    metrics: Metrics

    def due(self, session: Session) -> bool:
        """Whether ``session``'s access token should be refreshed now (then :meth:`fresh`)."""
        if session.refresh_token is None:
            return False
        return session.needs_refresh(time.time(), self.skew)

    async def fresh(self, ticket: Ticket, session: Session) -> Session | None:
        """``session`` with usable tokens, or ``None`` when the provider has ended it."""
        if not self.due(session):
            return session
        store, lock = self.store, self.lock
        deadline = time.monotonic() + LOCK_SECONDS
        while True:
            token = await lock.try_lock(ticket, LOCK_SECONDS)
            if token is not None:
                try:
                    current = await store.load(ticket, cached=False)  # re-read under the lock
                    if current is None or not self.due(current):
                        return current
                    try:
                        return await self._refresh(ticket, current)
                    except Exception:
                        self.metrics.refreshed("error")  # provider unreachable, bad token, store down
                        raise
                finally:
                    await lock.unlock(ticket, token)
            await asyncio.sleep(WAIT_STEP)
            current = await store.load(ticket, cached=False)
            if current is None or not self.due(current):
                return current
            if time.monotonic() > deadline:
                raise ProviderUnavailable("another request's token refresh did not finish in time")

    async def _refresh(self, ticket: Ticket, session: Session) -> Session | None:
        store, metrics = self.store, self.metrics
        entry = self.providers.of_session(session.provider)
        provider, client, http = entry.discovery, entry.client, entry.http
        assert session.refresh_token is not None
        try:
            tokens = await refresh_tokens(http, provider.metadata, client, session.refresh_token)
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
            metrics.refreshed("ended")
            metrics.logged_out("refresh_failure")
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
                metrics.refreshed("ended")
                return None
            claims = await with_userinfo(
                http, provider.metadata, entry.config.userinfo, claims, tokens.access_token
            )
            identity = login_identity(self.authorization, claims, tokens.access_token)
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
            metrics.refreshed("ended")
            return None
        log.info("tokens refreshed", extra={"event": "refresh", "sub": identity.sub})
        metrics.refreshed("success")
        return renewed

"""The provider as discovered: metadata from ``/.well-known/openid-configuration`` and its JWKS.

Discovery is retried with backoff until it succeeds (the proxy starts even when the provider is
briefly down; ``/ready`` says so). The JWKS is cached and refetched when a token names a key id we
don't know, at most once per ``JWKS_MIN_REFRESH`` seconds so a flood of bad tokens can't hammer the
provider.

A failed JWKS fetch (error status, timeout, not JSON, not a key set) backs off too: no new fetch for
``JWKS_RETRY_FIRST`` seconds, doubling with each failure in a row up to ``JWKS_RETRY_MAX``, back to
nothing on a success. Requests arriving meanwhile share the one fetch in flight (a lock) and then its
outcome. While backing off, a token whose ``kid`` the cached keys don't know fails as an unknown key
(``TokenInvalid``) and one they do know verifies; only with no keys at all is it
``ProviderUnavailable``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..errors import ProviderUnavailable

log = logging.getLogger(__name__)

JWKS_MIN_REFRESH = 10.0
"""Seconds between two successful refetches forced by an unknown kid."""
JWKS_RETRY_FIRST = 2.0
"""Seconds without a fetch after one failed; doubled for each further failure in a row ..."""
JWKS_RETRY_MAX = 60.0
"""... up to this."""
REACHABLE_FOR = 10.0


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    userinfo_endpoint: str | None
    revocation_endpoint: str | None
    id_token_algs: tuple[str, ...]
    token_auth_methods: tuple[str, ...]
    backchannel_logout: bool = False
    """``backchannel_logout_supported: true``: the provider can tell us of sign-outs made elsewhere."""
    iss_in_response: bool = False
    """``authorization_response_iss_parameter_supported`` (RFC 9207): the provider names itself in
    every authorization response, so an answer without ``iss`` is refused (mix-up)."""

    def missing_logout_features(self) -> list[str]:
        """What this provider lacks for a complete sign-out, in words for a log line."""
        missing = []
        if not self.end_session_endpoint:
            missing.append("no end_session_endpoint (sign-out here cannot end the provider's session)")
        if not self.revocation_endpoint:
            missing.append("no revocation_endpoint (refresh tokens cannot be revoked)")
        if not self.backchannel_logout:
            missing.append(
                "no back-channel logout (a sign-out at the provider or in another app does not end "
                "sessions here before their next refresh)"
            )
        return missing

    @classmethod
    def parse(cls, doc: Any, expected_issuer: str) -> Metadata:
        """Validate a discovery document; ``ValueError`` names what is wrong."""
        if not isinstance(doc, dict):
            raise ValueError("discovery document is not a JSON object")
        for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise ValueError(f"discovery document lacks {key!r}")
        if doc["issuer"].rstrip("/") != expected_issuer.rstrip("/"):
            raise ValueError(f"issuer {doc['issuer']!r} differs from the configured {expected_issuer!r}")

        def opt(key: str) -> str | None:
            value = doc.get(key)
            return value if isinstance(value, str) and value else None

        def strs(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            value = doc.get(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
                return tuple(value)
            return default

        # Keys come from the JWKS, so only asymmetric algorithms make sense: refusing "none" and
        # HS* closes the alg-confusion attacks (an HMAC keyed with a public key).
        algs = tuple(
            a
            for a in strs("id_token_signing_alg_values_supported", ("RS256",))
            if a != "none" and not a.startswith("HS")
        )
        return cls(
            issuer=doc["issuer"],
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc["jwks_uri"],
            end_session_endpoint=opt("end_session_endpoint"),
            userinfo_endpoint=opt("userinfo_endpoint"),
            revocation_endpoint=opt("revocation_endpoint"),
            id_token_algs=algs or ("RS256",),
            token_auth_methods=strs("token_endpoint_auth_methods_supported", ("client_secret_basic",)),
            backchannel_logout=doc.get("backchannel_logout_supported") is True,
            iss_in_response=doc.get("authorization_response_iss_parameter_supported") is True,
        )


async def fetch_json(http: aiohttp.ClientSession, url: str) -> Any:
    """GET a JSON document from the provider; every failure is ``ProviderUnavailable``."""
    try:
        async with http.get(url, headers={"Accept": "application/json"}) as resp:
            if resp.status != 200:
                raise ProviderUnavailable(f"GET {url} answered {resp.status}")
            return json.loads(await resp.read())
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise ProviderUnavailable(f"GET {url} failed: {type(exc).__name__}: {exc}") from None
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise ProviderUnavailable(f"GET {url} did not return usable JSON") from None


class Provider:
    """Discovery and keys of one OIDC provider, fetched through ``http``."""

    def __init__(
        self, issuer: str, http: aiohttp.ClientSession, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.issuer = issuer
        self._http = http
        self._clock = clock
        self._metadata: Metadata | None = None
        self._keys: KeySet | None = None
        self._refreshed_at = float("-inf")
        self._reachable_at = float("-inf")
        self._keys_lock = asyncio.Lock()
        self._keys_failures = 0
        self._keys_retry_at = float("-inf")

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def ready(self) -> bool:
        return self._metadata is not None

    @property
    def metadata(self) -> Metadata:
        if self._metadata is None:
            raise ProviderUnavailable("provider discovery has not succeeded yet")
        return self._metadata

    async def discover(self) -> Metadata:
        doc = await fetch_json(self._http, self.discovery_url)
        try:
            self._metadata = Metadata.parse(doc, self.issuer)
        except ValueError as exc:
            raise ProviderUnavailable(f"{self.discovery_url}: {exc}") from None
        return self._metadata

    async def check_reachable(self, timeout: float = 3.0) -> None:
        """Before sending a browser to the provider: does it answer? (``ProviderUnavailable`` if
        not, so the user gets our page instead of the browser's connection error.) A success is
        trusted for ``REACHABLE_FOR`` seconds, so a burst of logins costs one request."""
        if self._clock() - self._reachable_at < REACHABLE_FOR:
            return
        try:
            await asyncio.wait_for(fetch_json(self._http, self.discovery_url), timeout)
        except asyncio.TimeoutError:
            raise ProviderUnavailable(f"{self.discovery_url} did not answer in {timeout:.0f}s") from None
        self._reachable_at = self._clock()

    def suspect(self) -> None:
        """A request to the provider just failed: check it again before the next login."""
        self._reachable_at = float("-inf")

    async def discover_until_ready(self, first_delay: float = 0.5, max_delay: float = 30.0) -> None:
        """Retry discovery with exponential backoff until it works (run as a background task)."""
        delay = first_delay
        while True:
            try:
                meta = await self.discover()
            except ProviderUnavailable as exc:
                log.warning("provider discovery failed, retrying in %.1fs: %s", delay, exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)
                continue
            log.info("provider discovered", extra={"issuer": meta.issuer})
            for missing in meta.missing_logout_features():
                log.warning(
                    "provider %s: %s", meta.issuer, missing, extra={"event": "provider_logout_feature"}
                )
            return

    async def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys; ``refresh`` refetches unless that was done moments ago, or a
        fetch failed moments ago (then the cached keys, if any; see the module docstring)."""
        if self._keys is not None and not refresh:
            return self._keys
        async with self._keys_lock:
            now = self._clock()
            # Only forced refetches are rate limited: a rotation just after start-up still works.
            recent = now - self._refreshed_at < JWKS_MIN_REFRESH
            if self._keys is not None and (recent or not refresh):
                return self._keys
            if now < self._keys_retry_at:
                if self._keys is not None:
                    return self._keys
                raise ProviderUnavailable(
                    f"JWKS at {self.metadata.jwks_uri} failed; next try in {self._keys_retry_at - now:.0f}s"
                )
            try:
                keys = await self._fetch_keys()
            except ProviderUnavailable as exc:
                self._keys_failed(exc)
                if self._keys is not None:
                    return self._keys
                raise
            self._keys, self._keys_failures, self._keys_retry_at = keys, 0, float("-inf")
            if refresh:
                self._refreshed_at = self._clock()
            return keys

    async def _fetch_keys(self) -> KeySet:
        doc = await fetch_json(self._http, self.metadata.jwks_uri)
        try:
            return KeySet.import_key_set(doc)
        except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ProviderUnavailable(f"JWKS at {self.metadata.jwks_uri} is unusable: {exc}") from None

    def _keys_failed(self, exc: ProviderUnavailable) -> None:
        self._keys_failures += 1
        delay = min(JWKS_RETRY_FIRST * 2.0 ** min(self._keys_failures - 1, 32), JWKS_RETRY_MAX)
        self._keys_retry_at = self._clock() + delay
        log.warning(
            "JWKS fetch failed (%d in a row), no new fetch for %.0fs: %s",
            self._keys_failures,
            delay,
            exc.message,
            extra={"event": "jwks_fetch_failed"},
        )

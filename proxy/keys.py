"""Every typed key of the application and of a request, in one place.

This module imports the types only for type checking, so any module may import it without cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp import ClientSession

    from .authz import RuleBook
    from .config import Settings
    from .cookies import CookieCodec
    from .metrics import Metrics
    from .oidc.providers import Providers
    from .pages import Templates
    from .routing import Router
    from .sessions.base import Session
    from .sessions.store import SessionStore

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
COOKIES: web.AppKey[CookieCodec] = web.AppKey("cookies")
STORE: web.AppKey[SessionStore] = web.AppKey("store")
PROVIDERS: web.AppKey[Providers] = web.AppKey("providers")
"""Every configured provider (its client, discovery and keys, HTTP client with a total timeout)."""
STEP_UPS: web.AppKey[frozenset[str]] = web.AppKey("step_ups")
"""The ``acr_values`` strings upstreams' ``acr`` send browsers to sign in with (``proxy.signin``)."""
ROUTER: web.AppKey[Router] = web.AppKey("router")
RULES: web.AppKey[RuleBook] = web.AppKey("rules")
"""The authorization rules, global and per upstream prefix."""
TEMPLATES: web.AppKey[Templates] = web.AppKey("templates")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
"""This app's Prometheus registry and metrics (never a process-global registry)."""
UPSTREAM_HTTP: web.AppKey[ClientSession] = web.AppKey("upstream_http")
"""Client for upstream traffic: no total timeout, no decompression, streams."""

SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
"""The request's session as loaded by ``sessions.request.current_session`` (``None``: signed out)."""
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")

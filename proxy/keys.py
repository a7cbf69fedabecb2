"""Every typed key of the application and of a request, in one place.

This module imports the types only for type checking, so any module may import it without cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp import ClientSession

    from .authenticator import Authenticator
    from .authz import RuleBook
    from .config import Settings
    from .cookies import CookieCodec
    from .inject import Injections
    from .metrics_registry import Metrics
    from .oidc.providers import Providers
    from .page_templates import Templates
    from .routing import Router
    from .rules import RuleTable
    from .sessions.backend import Connection
    from .sessions.base import Session
    from .sessions.guards import Lock, ReplayGuard
    from .sessions.refresh import Refresher
    from .sessions.store import SessionStore
    from .tasks import Tasks
    from .tls import ServerTls
    from .trusted_proxies import RemoteClient, Trust

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
COOKIES: web.AppKey[CookieCodec] = web.AppKey("cookies")
STORE: web.AppKey[SessionStore] = web.AppKey("store")
"""Sessions and their records (with their index: ``STORE.index``)."""
REPLAY: web.AppKey[ReplayGuard] = web.AppKey("replay")
"""Single use of login states and logout tokens."""
LOCK: web.AppKey[Lock] = web.AppKey("lock")
"""Each session's refresh lock."""
AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator")
"""Who asks: bearer token or session (``current``), the session alone (``session``)."""
REFRESHER: web.AppKey[Refresher] = web.AppKey("refresher")
"""Keeps sessions' tokens fresh (its collaborators injected by ``proxy.app``)."""
STORE_CONNECTION: web.AppKey[Connection] = web.AppKey("store_connection")
"""The store backend's connection, for ``/ready``."""
PROVIDERS: web.AppKey[Providers] = web.AppKey("providers")
"""Every configured provider (its client, discovery and keys, HTTP client with a total timeout)."""
STEP_UPS: web.AppKey[frozenset[str]] = web.AppKey("step_ups")
"""The ``acr_values`` strings upstreams' ``acr`` send browsers to sign in with (``proxy.signin``)."""
ROUTER: web.AppKey[Router] = web.AppKey("router")
RULES: web.AppKey[RuleBook] = web.AppKey("rules")
"""The authorization rules, global and per upstream prefix."""
INJECT: web.AppKey[Injections] = web.AppKey("inject")
"""``headers.inject`` / ``groups_filter``, global and per upstream (proxy/inject.py)."""
RULE_TABLE: web.AppKey[RuleTable] = web.AppKey("rule_table")
"""``authorization.rules``, compiled (proxy/rules.py)."""
TEMPLATES: web.AppKey[Templates] = web.AppKey("templates")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
"""This app's Prometheus registry and metrics (never a process-global registry)."""
UPSTREAM_HTTP: web.AppKey[ClientSession] = web.AppKey("upstream_http")
"""Client for upstream traffic: no total timeout, no decompression, streams."""
TASKS: web.AppKey[Tasks] = web.AppKey("tasks")
"""The application's background tasks (``proxy.tasks``), cancelled at its cleanup."""
TRUST: web.AppKey[Trust] = web.AppKey("trust")
"""``server.trusted_proxies``: whose forwarding headers are believed."""
SERVER_TLS: web.AppKey[ServerTls] = web.AppKey("server_tls")
"""The listener's TLS context and its certificate files (set only with ``server.tls_cert_file``)."""

SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
"""The request's session as loaded by ``sessions.request.current_session`` (``None``: signed out)."""
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
CLIENT: web.RequestKey[RemoteClient] = web.RequestKey("client")
"""Who sent the request (``trusted_proxies.Trust.resolve``), once worked out (``handlers.common.client``)."""

"""The composition root: settings in, a wired ``web.Application`` out. No logic lives here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from .authenticator import Authenticator
from .authz import RuleBook
from .config import ConfigError, ProviderConfig, Settings
from .cookies import CookieCodec
from .errors import StoreUnavailable
from .handlers import auth, auth_request, backchannel, logout, probe, sessions
from .handlers import proxy as proxy_handler
from .inject import Injections
from .keys import (
    AUTHENTICATOR,
    COOKIES,
    INJECT,
    LOCK,
    METRICS,
    PROVIDERS,
    REFRESHER,
    REPLAY,
    ROUTER,
    RULE_TABLE,
    RULES,
    SERVER_TLS,
    SESSION,
    SETTINGS,
    STEP_UPS,
    STORE,
    STORE_CONNECTION,
    TASKS,
    TEMPLATES,
    TRUST,
    UPSTREAM_HTTP,
)
from .metrics import expose, flush_ctx, instrument, listener_ctx
from .metrics_registry import Metrics
from .middlewares import Front
from .oidc.client import Client
from .oidc.discovery import Provider
from .oidc.providers import ProviderEntry, Providers, display_name
from .page_templates import TemplateError, Templates
from .routing import Router
from .rules import RuleTable
from .sessions.backend import Backend
from .sessions.cache import SessionCache
from .sessions.crypto import derive_server_key
from .sessions.guards import Lock, ReplayGuard
from .sessions.index import SessionIndex
from .sessions.invalidation import Invalidation
from .sessions.memory_store import MemoryBackend
from .sessions.redis_store import RedisBackend, pubsub_backend
from .sessions.refresh import Refresher
from .sessions.store import SessionStore
from .signin import step_up_values
from .tasks import Tasks
from .tls import ServerTls, client_ssl, warn_insecure
from .trusted_proxies import Trust
from .upstream_pool import FreshConnector, UpstreamResponse

log = logging.getLogger(__name__)

BackendFactory = Callable[[Settings], Backend]


def default_backend(settings: Settings) -> Backend:
    if settings.session.store == "memory":
        return MemoryBackend()
    return RedisBackend.from_url(
        settings.session.redis_url.get_secret_value(), tls=settings.session.redis_tls
    )


def _store_ctx(make_backend: BackendFactory) -> Callable[[web.Application], AsyncIterator[None]]:
    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        backend = instrument(make_backend(settings), app[METRICS])  # one connection, every role
        app[STORE] = SessionStore(
            backend,
            SessionIndex(backend, backend),
            idle_timeout=settings.session.idle_timeout,
            record_keys=[derive_server_key(s) for s in settings.cookie.secrets_bytes],  # first seals
        )
        app[REPLAY] = ReplayGuard(backend)
        app[LOCK] = Lock(backend)
        app[STORE_CONNECTION] = backend
        try:
            await backend.ping()
        except StoreUnavailable as exc:
            # Stay up: /ready reports it and requests fail closed until the store is back.
            log.warning("session store unavailable at start-up: %s", exc.message)
        yield
        await backend.close()
        log.info("session store closed", extra={"event": "store_closed"})

    return store_ctx


async def tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The application's background tasks: whatever still runs at cleanup is cancelled (first in
    the list, so cleaned up last, after the contexts that cancel their own)."""
    app[TASKS] = Tasks()
    yield
    await app[TASKS].close()


async def cache_ctx(app: web.Application) -> AsyncIterator[None]:
    """In-process session cache, fed by Redis pub/sub invalidation (redis store only)."""
    settings = app[SETTINGS].session
    if settings.store != "redis" or settings.cache_max_age is None:
        yield
        return
    # standalone, Sentinel, Cluster
    pubsub = pubsub_backend(settings.redis_url.get_secret_value(), timeout=2, tls=settings.redis_tls)
    invalidation = Invalidation(pubsub.plain, SessionCache(settings.cache_max_age))
    app[STORE].invalidation = invalidation
    feed = app[TASKS].spawn(invalidation.run(), name="session-invalidation")
    yield
    await app[TASKS].cancel(feed)
    app[STORE].invalidation = None
    await pubsub.close()


def provider_ctx(cfg: ProviderConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context of one provider: its HTTP client (its TLS options), its discovery (retried
    in the background until it succeeds) and JWKS cache, in ``app[PROVIDERS]`` while it runs."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=cfg.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": "auth-proxy"},
            connector=aiohttp.TCPConnector(ssl=client_ssl(cfg)),  # ca_file, or verified
        )
        client = Client(cfg.client_id, cfg.secret, tuple(cfg.scopes))
        entry = ProviderEntry(cfg, client, Provider(cfg.issuer_url, http), http)
        app[PROVIDERS].add(entry)
        discovery = app[TASKS].spawn(entry.discovery.discover_until_ready(), name=f"discovery-{cfg.id}")
        yield
        await app[TASKS].cancel(discovery)
        app[PROVIDERS].remove(cfg.id)
        await http.close()

    return ctx


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    """Who asks, and keeping their tokens fresh: built once the store and providers are up."""
    settings = app[SETTINGS]
    app[REFRESHER] = Refresher(
        app[STORE], app[LOCK], app[PROVIDERS], settings.authorization, settings.session.refresh_skew,
        app[METRICS],
    )  # fmt: skip
    app[AUTHENTICATOR] = Authenticator(
        settings, app[COOKIES], app[STORE], app[REFRESHER], app[PROVIDERS], SESSION
    )
    yield


async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    http = aiohttp.ClientSession(
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        cookie_jar=aiohttp.DummyCookieJar(),  # never keep one user's upstream cookies for another
        connector=FreshConnector(limit=1024),  # never lends a connection holding bytes unasked for
        response_class=UpstreamResponse,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )
    app[UPSTREAM_HTTP] = http
    yield
    await http.close()


async def server_tls_ctx(app: web.Application) -> AsyncIterator[None]:
    """Watches the listener's certificate files (when the server serves TLS)."""
    tls = app.get(SERVER_TLS)
    if tls is None:
        yield
        return
    watch = app[TASKS].spawn(tls.watch(), name="server-tls-reload")
    yield
    await app[TASKS].cancel(watch)


async def startup_warnings(app: web.Application) -> None:
    """What an operator must not miss: verification turned off, a deprecated trust-everyone key."""
    warn_insecure(app[SETTINGS], app[METRICS])
    if app[SETTINGS].server.trust_forwarded_headers:
        log.warning(
            "server.trust_forwarded_headers is deprecated and believes forwarding headers from ANY "
            "peer: set server.trusted_proxies to your front proxies' addresses instead",
            extra={"event": "deprecated", "key": "server.trust_forwarded_headers"},
        )


def create_app(settings: Settings, *, backend: BackendFactory = default_backend) -> web.Application:
    prefix = settings.server.proxy_prefix
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = Metrics.for_process(prefix)
    app[COOKIES] = CookieCodec(settings.cookie, settings.session.lifetime)
    providers = settings.all_providers
    app[PROVIDERS] = Providers(providers)
    app[STEP_UPS] = step_up_values(settings.upstreams)
    app[ROUTER] = Router(settings.upstreams, settings.cors.policy)
    app[RULES] = RuleBook.of(settings.authorization, settings.upstreams)
    app[RULE_TABLE] = RuleTable(settings.authorization.rules)
    app[INJECT] = Injections.of(settings)
    provider_name = display_name(providers[0], settings.pages.provider_name)
    try:
        app[TEMPLATES] = Templates(settings.pages.templates_dir, provider_name)
    except TemplateError as exc:
        raise ConfigError(f"invalid configuration:\n  pages.templates_dir: {exc}") from None
    app[TRUST] = Trust(settings.server.trusted_networks, settings.server.forwarded_header)
    if settings.server.tls_cert_file is not None:
        app[SERVER_TLS] = ServerTls(settings.server)  # checked at load: ConfigError named the key
    app.on_startup.append(startup_warnings)  # once logging is set up, in every worker
    app.cleanup_ctx.extend([tasks_ctx, _store_ctx(backend), cache_ctx])
    app.cleanup_ctx.extend(provider_ctx(cfg) for cfg in providers)  # one each
    app.cleanup_ctx.extend([services_ctx, upstream_ctx, server_tls_ctx])
    app.cleanup_ctx.append(listener_ctx)  # /metrics on server.metrics_listen, if set
    app.cleanup_ctx.append(flush_ctx)

    r = app.router
    front = Front(app[METRICS], settings.server)
    r.add_get(f"{prefix}/start", front(auth.start, "login"))
    r.add_get(f"{prefix}/sign_in", front(auth.sign_in, "login"))
    r.add_get(f"{prefix}/callback", front(auth.callback, "callback"))
    r.add_route("GET", f"{prefix}/sign_out", front(logout.sign_out, "sign_out"))
    r.add_route("POST", f"{prefix}/sign_out", front(logout.sign_out, "sign_out"))
    r.add_get(f"{prefix}/signed_out", front(logout.signed_out, "sign_out"))
    r.add_get(f"{prefix}/userinfo", front(probe.userinfo, "other"))
    r.add_get(f"{prefix}/sessions", front(sessions.list_sessions, "other"))
    r.add_post(f"{prefix}/sessions/end", front(sessions.end_one, "other"))
    r.add_route("*", f"{prefix}/auth", front(auth_request.auth_check, "auth_request"))
    r.add_post(f"{prefix}/backchannel_logout", front(backchannel.backchannel_logout, "backchannel"))
    r.add_get(f"{prefix}/frontchannel_logout", front(backchannel.frontchannel_logout, "backchannel"))
    r.add_get("/ping", front(probe.ping, "probe"))
    r.add_get("/ready", front(probe.ready, "probe"))
    if settings.server.metrics_listen is None:
        r.add_get("/metrics", front(expose, "probe"))
    r.add_route("*", "/{tail:.*}", front(proxy_handler.proxy))
    return app

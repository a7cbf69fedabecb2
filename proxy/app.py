"""The composition root: settings in, a wired ``web.Application`` out. No logic lives here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from .authz import RuleBook
from .config import ConfigError, Settings
from .cookies import CookieCodec
from .errors import StoreUnavailable
from .handlers import auth, auth_request, backchannel, logout, probe, sessions
from .handlers import proxy as proxy_handler
from .keys import (
    COOKIES,
    METRICS,
    PROVIDERS,
    ROUTER,
    RULES,
    SETTINGS,
    STEP_UPS,
    STORE,
    TEMPLATES,
    UPSTREAM_HTTP,
)
from .metrics import InstrumentedBackend, Metrics, expose, flush_ctx, listener_ctx
from .middlewares import Front
from .oidc.providers import Providers, display_name, provider_ctx
from .pages import TemplateError, Templates
from .routing import Router
from .sessions.backend import Backend
from .sessions.cache import SessionCache
from .sessions.crypto import derive_server_key
from .sessions.invalidation import Invalidation
from .sessions.memory_store import MemoryBackend
from .sessions.redis_store import RedisBackend, pubsub_backend
from .sessions.store import SessionStore
from .signin import step_up_values
from .upstream_pool import FreshConnector, UpstreamResponse

log = logging.getLogger(__name__)

BackendFactory = Callable[[Settings], Backend]


def default_backend(settings: Settings) -> Backend:
    if settings.session.store == "memory":
        return MemoryBackend()
    return RedisBackend.from_url(settings.session.redis_url.get_secret_value())


def _store_ctx(make_backend: BackendFactory) -> Callable[[web.Application], AsyncIterator[None]]:
    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        store = SessionStore(
            InstrumentedBackend(make_backend(settings), app[METRICS]),
            idle_timeout=settings.session.idle_timeout,
            record_keys=[derive_server_key(s) for s in settings.cookie.secrets_bytes],  # first seals
        )
        try:
            await store.ping()
        except StoreUnavailable as exc:
            # Stay up: /ready reports it and requests fail closed until the store is back.
            log.warning("session store unavailable at start-up: %s", exc.message)
        app[STORE] = store
        yield
        await store.backend.close()
        log.info("session store closed", extra={"event": "store_closed"})

    return store_ctx


async def cache_ctx(app: web.Application) -> AsyncIterator[None]:
    """In-process session cache, fed by Redis pub/sub invalidation (redis store only)."""
    settings = app[SETTINGS].session
    if settings.store != "redis" or settings.cache_max_age is None:
        yield
        return
    pubsub = pubsub_backend(settings.redis_url.get_secret_value(), timeout=2)  # standalone, Sentinel, Cluster
    invalidation = Invalidation(pubsub.plain, SessionCache(settings.cache_max_age))
    app[STORE].invalidation = invalidation
    feed = asyncio.ensure_future(invalidation.run())
    yield
    feed.cancel()
    await asyncio.gather(feed, return_exceptions=True)
    app[STORE].invalidation = None
    await pubsub.close()


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


def hot_paths(settings: Settings) -> tuple[str, ...]:
    """The paths answered ahead of the router (``proxy.dispatch``): the auth subrequest, which a
    front proxy sends for each request it serves."""
    return (f"{settings.server.proxy_prefix}/auth",)


def create_app(settings: Settings, *, backend: BackendFactory = default_backend) -> web.Application:
    prefix = settings.server.proxy_prefix
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = Metrics.for_process(prefix)
    app[COOKIES] = CookieCodec(settings.cookie, settings.session.lifetime)
    providers = settings.all_providers
    app[PROVIDERS] = Providers(providers)
    app[STEP_UPS] = step_up_values(settings.upstreams)
    app[ROUTER] = Router(settings.upstreams)
    app[RULES] = RuleBook.of(settings.authorization, settings.upstreams)
    provider_name = display_name(providers[0], settings.pages.provider_name)
    try:
        app[TEMPLATES] = Templates(settings.pages.templates_dir, provider_name)
    except TemplateError as exc:
        raise ConfigError(f"invalid configuration:\n  pages.templates_dir: {exc}") from None
    app.cleanup_ctx.extend([_store_ctx(backend), cache_ctx])
    app.cleanup_ctx.extend(provider_ctx(PROVIDERS, cfg) for cfg in providers)  # one each
    app.cleanup_ctx.append(upstream_ctx)
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

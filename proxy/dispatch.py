"""Requests for a few exact paths handed straight to their handler, ahead of aiohttp's router.

aiohttp's ``Application`` finds each request's handler by resolving the URL against its router and
building a match info for it: about 5 µs per request here, a fifteenth of an auth subrequest
(``/oauth/auth``, the path nginx asks about for every request it serves). Paths whose resource is
plain (no variable parts) and takes every method on one route resolve to that route (unless a
resource registered before it matches too: ``tests/unit/test_dispatch.py`` checks the router agrees
for the paths we name). For those the router's answer is known before any request arrives:
``fast_paths`` builds it once, and the dispatcher put in front of the application (``install``)
uses it.

Only a request whose raw target is exactly such a path (with or without a query) takes the short
way. Anything else, including a percent-encoded spelling of the same path, an absolute-form target
and a request with ``Expect`` (answered ``100 Continue`` by the application), takes the
application's own way, so the handler a request reaches is always the one the router would pick.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def fast_paths(
    app: web.Application, paths: Iterable[str]
) -> Mapping[str, tuple[Handler, UrlMappingMatchInfo]]:
    """Each of ``paths`` with the handler the router gives it and a frozen match info (no path
    variables, so one serves every request). Each must be a plain resource of ``app`` with one route
    for every method: a programming error otherwise."""
    resources = {r.canonical: r for r in app.router.resources() if isinstance(r, web.PlainResource)}
    table: dict[str, tuple[Handler, UrlMappingMatchInfo]] = {}
    for path in paths:
        routes = list(resources[path]) if path in resources else []
        if len(routes) != 1 or routes[0].method != hdrs.METH_ANY:
            raise ValueError(f"{path}: not one plain route for every method")
        info = UrlMappingMatchInfo({}, routes[0])
        info.add_app(app)
        info.freeze()
        table[path] = (routes[0].handler, info)
    return MappingProxyType(table)


def dispatcher(app: web.Application, paths: Iterable[str], slow: RequestHandler) -> RequestHandler:
    """A request handler for aiohttp's ``Server``: the paths of :func:`fast_paths` straight to
    their handler, everything else to ``slow`` (the application's own)."""
    table = fast_paths(app, paths)

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        path, _, _ = request.raw_path.partition("?")
        entry = table.get(path)
        if entry is None or hdrs.EXPECT in request.headers:
            return await slow(request)
        handler, info = entry
        request._match_info = info  # type: ignore[attr-defined]  # what Application._handle sets
        return await handler(request)  # type: ignore[arg-type]  # a web.Request: the app's factory

    return dispatch


def install(runner: web.AppRunner, paths: Iterable[str]) -> None:
    """Put the dispatcher for ``paths`` in front of ``runner``'s application: after ``setup()``,
    before the first connection (each connection takes the server's handler when it opens)."""
    server = runner.server
    assert server is not None, "install() after runner.setup()"
    server.request_handler = dispatcher(runner.app, paths, server.request_handler)

"""The front layer around every route (``proxy.middlewares.Front``): what it does with answers and
failures of the handler behind it."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError
from aiohttp.test_utils import TestServer

from proxy.app import create_app
from proxy.config import load_settings
from proxy.keys import METRICS
from proxy.middlewares import Front


async def _served(handler: web.Handler) -> TestServer:
    settings = load_settings(
        None,
        provider={"issuer_url": "http://127.0.0.1:9/realms/x", "client_id": "p", "client_secret": "s"},
        cookie={"secret": "x" * 32, "secure": False},
        session={"store": "memory"},
    )
    app = create_app(settings)
    app.router.add_get("/t", Front(app[METRICS], settings.server)(handler, "other"))
    server = TestServer(app)
    await server.start_server()
    return server


async def test_a_client_gone_mid_answer_is_a_499_and_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def writes_to_a_closed_client(request: web.Request) -> web.StreamResponse:
        raise ClientConnectionResetError("Cannot write to closing transport")

    caplog.set_level(logging.INFO, logger="proxy")
    server = await _served(writes_to_a_closed_client)
    try:
        async with aiohttp.ClientSession() as client, client.get(server.make_url("/t")) as r:
            await r.read()
        metrics = server.app[METRICS]
        metrics.flush()
        assert metrics.requests.labels("other", "499")._value.get() == 1
    finally:
        await server.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
    assert any(getattr(r, "event", None) == "client_gone" for r in caplog.records)


async def test_an_unexpected_error_is_a_500_page_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("boom")

    server = await _served(fails)
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(server.make_url("/t"), headers={"X-Request-ID": "abc-1"}) as r:
                body = await r.text()
                assert r.status == 500 and r.headers["X-Request-ID"] == "abc-1"
        assert "boom" not in body and "Traceback" not in body
    finally:
        await server.close()
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)  # the log has it


async def test_an_http_exception_keeps_its_status_and_gets_the_request_id() -> None:
    async def gone(request: web.Request) -> web.StreamResponse:
        raise web.HTTPGone()

    server = await _served(gone)
    try:
        async with aiohttp.ClientSession() as client, client.get(server.make_url("/t")) as r:
            assert r.status == 410 and len(r.headers["X-Request-ID"]) == 16
    finally:
        await server.close()

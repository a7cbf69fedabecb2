"""The pool of upstream connections: aiohttp's, except that a connection on which the upstream sent
anything it wasn't asked for is closed instead of lent to the next request.

HTTP/1.1 gives a client no way to tell an answer from bytes the server sent before it was asked, so
on a kept-alive connection those bytes would be taken for the next request's answer: another user's
request, often. aiohttp's client closes a connection that holds unread bytes when it is released, but
not one whose surplus arrives a moment later, while it waits in the pool (aiohttp 3.14.5 then hands
that surplus out as the next answer: ``tests/security/test_upstream_responses.py``). So before a
pooled (or new) connection is used, :class:`FreshConnector` checks that nothing is waiting on it:

- no complete message parsed meanwhile (``ResponseHandler.should_close``: anything queued, an upgrade,
  an error), and
- nothing unread in the socket (``poll`` with no wait: data or the upstream's close).

A ``101 Switching Protocols`` that switched nothing (no ``Upgrade``: the upstream was never asked) ends
its connection too (:class:`UpstreamResponse`): what follows it on the wire is no answer to anything.

Bytes that arrived as part of a head and were read into the previous answer's parser are dropped with
it: aiohttp gives each request a new parser. What the check can't catch is what no HTTP/1.1 client
can: bytes still on the wire when the request goes out.
"""

from __future__ import annotations

import select

import aiohttp
from aiohttp.client_reqrep import ClientRequest, ClientResponse
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

ATTEMPTS = 3
"""Connections tried for one request before giving up (each stale one is closed; a new one is stale
only when the upstream speaks before it is asked)."""


class UpstreamSpeaksFirst(aiohttp.ClientConnectionError):
    """Every connection tried had bytes waiting before the request was sent."""


class FreshConnector(aiohttp.TCPConnector):
    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        for _ in range(ATTEMPTS):
            conn = await super().connect(req, traces, timeout)
            if not stale(conn):
                return conn
            conn.close()  # not back to the pool
        raise UpstreamSpeaksFirst(f"{req.url.origin()} sent bytes before it was asked")


def stale(conn: Connection) -> bool:
    """Whether anything arrived on ``conn`` that no request asked for (see the module's docstring)."""
    protocol, transport = conn.protocol, conn.transport
    if protocol is None or transport is None:
        return False  # already closed: aiohttp's own error follows
    if protocol.should_close:
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


class UpstreamResponse(ClientResponse):
    """aiohttp's response (``ClientSession(response_class=...)``), marking the connection of a 101
    that upgraded nothing as not to be used again (aiohttp has already released it to the pool)."""

    async def start(self, connection: Connection) -> ClientResponse:
        protocol = connection.protocol
        await super().start(connection)
        if self.status == 101 and protocol is not None and not protocol.upgraded:
            protocol.force_close()
        return self

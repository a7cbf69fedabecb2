"""What the front-proxy attack tables share (test_nginx_front.py, test_traefik_front.py): an upstream
that records every request that reaches it, raw HTTP/1.1 requests with any Host and request line, and
the table of hostile requests itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

PUBLIC = ["GET=^/public$", "GET=^/$"]
"""The public routes (``authorization.skip_auth_routes``) every table runs against: a page and the
home page (a URL whose path comes out empty reads as ``/``)."""

REACHED = b"UPSTREAM-REACHED"


@dataclass
class RecordingUpstream:
    """A raw HTTP/1.1 server: every request head it reads is recorded, every answer is 200."""

    port: int = 0
    seen: list[bytes] = field(default_factory=list)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.seen.append(head)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(REACHED), REACHED))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def recording_upstream() -> AsyncIterator[RecordingUpstream]:
    upstream = RecordingUpstream()
    server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()


async def raw_answer(port: int, head: bytes) -> bytes:
    """Send ``head`` (a request line and headers, CRLF-separated, without the final blank line) as it
    is; the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def raw_request(port: int, head: bytes) -> tuple[int, bytes]:
    """The answer's status (0: the connection closed without one) and body."""
    answer = await raw_answer(port, head)
    if not answer.startswith(b"HTTP/"):
        return 0, answer
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


@dataclass(frozen=True)
class Attack:
    name: str
    target: str = "/private"
    host: str | None = "{site}"
    """``None``: no Host header; ``{site}`` is replaced by the front's own host:port."""
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    public: bool = False
    """The one kind of request that may reach the upstream without a session."""

    def head(self, site: str, version: str = "HTTP/1.1") -> bytes:
        lines = [f"{self.method} {self.target} {version}"]
        if self.host is not None:
            lines.append(f"Host: {self.host.replace('{site}', site)}")
        lines += [f"{k}: {v}" for k, v in self.headers]
        return "\r\n".join(lines).encode("latin-1")


_SPOOFS = {
    "X-Original-URL": "http://{site}/public",
    "X-Original-URI": "/public",
    "X-Original-Method": "GET",
    "X-Auth-Request-Redirect": "/public",
    "X-Forwarded-Uri": "/public",
    "X-Forwarded-Method": "GET",
    "X-Forwarded-Host": "x/public?",
    "X-Forwarded-Proto": "https",
}

ATTACKS: tuple[Attack, ...] = (
    Attack("the public route", "/public", public=True),
    Attack("the public route with a query", "/public?x=1", public=True),
    Attack("the public home page", "/", public=True),
    Attack("a private path"),
    Attack("POST to the public route", "/public", method="POST"),
    *(Attack(f"Host {h!r}", "/private", host=h) for h in
      ("x/public?", "x/public#", "x?", "x#", "x@y", "x y", "x%2Fpublic%3F", "", "a,b", "[::1", "x:99999")),
    *(Attack(f"Host {h!r} on the public route", "/public", host=h) for h in
      ("x/public?", "x#", "x@y", "x%2F", "")),
    Attack("no Host (HTTP/1.1)", "/public", host=None),
    *(Attack(f"path {p!r}", p) for p in
      ("/public/../private", "/public/%2e%2e/private", "/public%2f..%2fprivate", "/public/..%2fprivate",
       "/public#/../private", "/public;x", "//public", "/PUBLIC", "/public/", "/%70ublic%2F")),
    # nginx takes the host from an absolute-form target and the path is /public: the real public route
    Attack("absolute form naming /public", "http://x/public", public=True),
    Attack("absolute form naming /private", "http://x/private"),
    *(Attack(f"client's {k}", "/private", headers=((k, v),)) for k, v in _SPOOFS.items()),
    Attack("every spoof at once", "/private", headers=tuple(_SPOOFS.items())),
    Attack("spoofs twice", "/private", headers=(*_SPOOFS.items(), *_SPOOFS.items())),
    Attack("X-Original-Method GET on a POST", "/public", method="POST",
           headers=(("X-Original-Method", "GET"), ("X-Forwarded-Method", "GET"))),
)  # fmt: skip


async def check_attack(
    port: int, seen: list[bytes], attack: Attack, host: str, refused: tuple[int, ...]
) -> None:
    """Send ``attack`` through the front on ``port``: only a public route may reach the upstream
    (``seen``); anything else is answered by the front with one of ``refused``."""
    status, body = await raw_request(port, attack.head(host))
    if attack.public:
        assert (status, body) == (200, REACHED) and len(seen) == 1
        return
    assert seen == [] and body != REACHED, f"{attack.name}: reached the upstream ({status})"
    assert status in refused, status

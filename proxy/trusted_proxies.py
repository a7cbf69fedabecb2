"""Who the client is: the TCP peer, or, when the peer is a trusted proxy (``server.trusted_proxies``),
the right-most address in its forwarding header that is not itself a trusted proxy. Pure (no I/O).

Every proxy that appends to ``X-Forwarded-For`` (or adds a ``Forwarded`` element) appends the address
of *its* peer, so reading the chain from the right, each hop is vouched for by the trusted hop to its
right, until the first address that is not a trusted proxy: that is the client. Whatever lies to its
left was written by the client (or by proxies we know nothing of) and is not believed. So:

- an untrusted peer's forwarding headers are ignored entirely (its own address is the client);
- only one header is read (``server.forwarded_header``): the one the front proxy maintains. A front
  that appends to ``X-Forwarded-For`` passes a client's ``Forwarded`` through untouched, so reading
  both would let the client name itself;
- several copies of the header are one list, in order (RFC 9110 5.3);
- an entry that is not an IP address (``unknown``, ``_hidden``, a name, garbage) ends the walk: the
  client is then the trusted hop to its right, and :attr:`RemoteClient.certain` is false (such an address
  never passes ``upstreams[].trusted_ips``);
- a ``Forwarded`` header that does not parse (RFC 7239) is not read at all (``certain`` false);
- IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``) are read as the IPv4 address; zone ids (``%eth0``)
  and IPv4 with leading zeros are garbage.

The scheme and host the browser used come from ``X-Forwarded-Proto``/``-Host`` (their right-most
value: what the nearest proxy wrote) or from the client's own ``Forwarded`` element, only from a
trusted peer and only when plain (``http``/``https``; ``host[:port]``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from multidict import CIMultiDictProxy

from .fronts import valid_authority

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]

_PORT = re.compile(r"[0-9]{1,5}")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(rf'[ \t]*({_TOKEN})=({_TOKEN}|"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e])*")[ \t]*')


def parse_network(value: str) -> Network:
    """A CIDR (``10.0.0.0/8``, ``fd00::/8``) or one address; ``ValueError`` naming the fault."""
    text = value.strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            loose = ipaddress.ip_network(text, strict=False)
            raise ValueError(f"{value!r} has host bits set (did you mean {loose}?)") from None
        raise ValueError(f"{value!r} is not an IP network such as 10.0.0.0/8 or fd00::/8") from None


MAX_HOPS = 32
"""Addresses walked right to left at most; a longer run of trusted proxies ends the walk there,
uncertain (a chain that long is no deployment's, and each hop costs a parse)."""


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]:443``); ``None`` for anything else. Memoised (the same clients and proxies come
    back with every request), only for text short enough to be an address."""
    text = text.strip(" \t")
    return _parse_address(text) if len(text) <= 64 else None


@functools.lru_cache(maxsize=8192)
def _parse_address(text: str) -> IPAddress | None:
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest[:1] == ":" and _PORT.fullmatch(rest[1:]))):
            return None
        text = inner
        if "." in text and ":" not in text:
            return None  # [1.2.3.4] is no IPv6 address
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not _PORT.fullmatch(port):
            return None
    if "%" in text or not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_forwarded(values: Iterable[str]) -> list[dict[str, str]] | None:
    """RFC 7239 ``Forwarded`` elements (all copies, in order), parameter names lower-cased, quoted
    values unquoted; ``None`` when any part does not parse, or a parameter repeats in an element."""
    elements: list[dict[str, str]] = []
    text = ",".join(values)
    pos, end = 0, len(text)
    current: dict[str, str] = {}
    while True:
        match = _PAIR.match(text, pos)
        if match is None:
            return None
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name in current:
            return None
        current[name] = value
        pos = match.end()
        if pos == end:
            elements.append(current)
            return elements
        if text[pos] == ",":
            elements.append(current)
            current = {}
        elif text[pos] != ";":
            return None
        pos += 1


class RemoteClient(NamedTuple):
    """Who sent a request, as far as the proxy can tell."""

    ip: str
    """The client: the right-most untrusted hop, or the peer itself."""
    peer: str
    """The TCP peer."""
    certain: bool = True
    """``ip`` is the peer, or an untrusted hop a trusted proxy vouches for (not a guess made past an
    entry that isn't an address): only a certain address may pass ``trusted_ips``."""
    chain: tuple[str, ...] = ()
    """From the client to the peer: what goes upstream as ``X-Forwarded-For``."""
    scheme: str | None = None
    """The browser's scheme, from a trusted peer (``None``: not said, or not plain)."""
    host: str | None = None
    """The browser's host[:port], from a trusted peer (``None``: not said, or not plain)."""
    trusted_peer: bool = False
    """The peer is a trusted proxy (its forwarding headers were read)."""


def in_networks(address: str, networks: Sequence[Network]) -> bool:
    parsed = parse_address(address)
    return parsed is not None and any(parsed in net for net in networks)


def _last(values: list[str]) -> str | None:
    """The right-most of a comma-separated header's values (all copies), stripped."""
    if not values:
        return None
    return ",".join(values).rsplit(",", 1)[-1].strip(" \t") or None


class Trust:
    """``server.trusted_proxies`` and ``server.forwarded_header``, compiled once."""

    def __init__(self, networks: Sequence[Network], header: ForwardedHeader = "x-forwarded-for") -> None:
        self.networks = tuple(networks)
        self.header = header
        self.trusts = functools.lru_cache(maxsize=4096)(self._trusts)
        self.trusts_peer = functools.lru_cache(maxsize=4096)(self._trusts_peer)

    def _trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in net for net in self.networks)

    def _trusts_peer(self, remote: str | None) -> bool:
        """Whether a TCP peer may speak for others: always when no proxies are listed (nothing is
        configured to tell them apart), else only a listed one."""
        return not self.networks or self.trusts(parse_address(remote or ""))

    def resolve(self, remote: str | None, headers: CIMultiDictProxy[str]) -> RemoteClient:
        peer = remote or ""
        if not self.networks:
            return RemoteClient(peer, peer, True, (peer,))
        peer_ip = parse_address(peer)
        if not self.trusts(peer_ip):
            return RemoteClient(peer, peer, True, (peer,))
        if self.header == "forwarded":
            return self._from_forwarded(peer, headers)
        hops = [h for v in headers.getall("X-Forwarded-For", ()) for h in v.split(",")]
        ip, certain, chain = self._walk(peer, [h for h in hops if h.strip(" \t")])
        scheme = _scheme(_last(headers.getall("X-Forwarded-Proto", [])))
        return RemoteClient(
            ip, peer, certain, chain, scheme, _host(_last(headers.getall("X-Forwarded-Host", []))), True
        )

    def _walk(self, peer: str, hops: list[str]) -> tuple[str, bool, tuple[str, ...]]:
        """(client, certain, chain from the client on) for the hops left of a trusted ``peer``."""
        walked = [peer]  # right to left
        certain = True
        for hop in reversed(hops):
            address = parse_address(hop.strip(" \t"))
            if address is None or len(walked) > MAX_HOPS:
                certain = False
                break
            walked.append(str(address))
            if not self.trusts(address):
                break
        # else: every hop a trusted proxy: the left-most is the client
        return walked[-1], certain, tuple(reversed(walked))

    def _from_forwarded(self, peer: str, headers: CIMultiDictProxy[str]) -> RemoteClient:
        values = headers.getall("Forwarded", [])
        elements = parse_forwarded(values) if values else []
        if elements is None:
            return RemoteClient(peer, peer, False, (peer,), trusted_peer=True)
        ip, certain, chain = self._walk(peer, [e.get("for", "") for e in elements])
        # The element whose ``for`` is the client was written by the proxy the browser reached.
        index = len(elements) - (len(chain) - 1)
        element = elements[index] if 0 <= index < len(elements) else {}
        proto, host = _scheme(element.get("proto")), _host(element.get("host"))
        return RemoteClient(ip, peer, certain, chain, proto, host, True)


def _scheme(value: str | None) -> str | None:
    value = value.lower() if value else None
    return value if value in ("http", "https") else None


def _host(value: str | None) -> str | None:
    return value if value is not None and valid_authority(value) else None

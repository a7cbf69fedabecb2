"""Where Redis is: one URL for a standalone server, a Sentinel-managed master or a Cluster.

    redis://[[user]:password@]host:6379/0          standalone (also rediss:// for TLS, unix://)
    redis+sentinel://[[user]:password@]host:26379,host2:26379/mymaster[/0]
        [?sentinel_username=...&sentinel_password=...]
                                                   the master the Sentinels name ``mymaster``;
                                                   user/password are the master's, the sentinel_*
                                                   ones the Sentinels' own (if they require any)
    redis+cluster://[[user]:password@]host:6379,host2:6379
                                                   a Cluster, discovered from any of these nodes

``rediss+sentinel://`` and ``rediss+cluster://`` speak TLS (the system's CAs, or ``session.redis_tls``).
Pure parsing, no I/O: the configuration is checked with it at start-up. Errors never repeat the URL
(it may hold a password).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

STANDALONE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_SENTINEL_QUERY = frozenset({"sentinel_username", "sentinel_password"})


@dataclass(frozen=True)
class RedisTarget:
    kind: Literal["standalone", "sentinel", "cluster"]
    url: str
    """The URL as given (standalone: handed to redis-py as it is)."""
    nodes: tuple[tuple[str, int], ...] = ()
    """Sentinels, or Cluster seed nodes."""
    service: str | None = None
    """The Sentinel service (master) name."""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def _nodes(hostlist: str, default_port: int) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in hostlist.split(","):
        item = item.strip()
        if item.startswith("["):  # [::1]:26379
            host, _, rest = item[1:].partition("]")
            port_text = rest.removeprefix(":") if rest.startswith(":") else ""
            if rest and not rest.startswith(":"):
                raise ValueError("a host in [brackets] may only be followed by :port")
        else:
            host, _, port_text = item.partition(":")
        if not host:
            raise ValueError("every host in the list needs a name (host:port,host2:port)")
        if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
            raise ValueError("a port in the host list is not a number from 1 to 65535")
        nodes.append((host, int(port_text) if port_text else default_port))
    return tuple(nodes)


def parse_redis_url(url: str) -> RedisTarget:
    """What ``url`` names; ``ValueError`` says what is wrong with it (without repeating it)."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in (*STANDALONE_SCHEMES, *SENTINEL_SCHEMES, *CLUSTER_SCHEMES):
        raise ValueError(
            "must be a redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, "
            "redis+cluster:// or rediss+cluster:// URL"
        )
    if scheme in STANDALONE_SCHEMES:
        return RedisTarget("standalone", url, ssl=scheme == "rediss")
    # urlsplit can't take "h1:1,h2:2" as a netloc's host: split the parts by hand.
    parts = urlsplit("http://" + url[len(scheme) + 3 :])
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(pw) if colon else None
    if not hostlist:
        raise ValueError("names no host")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    ssl = scheme.startswith("rediss")
    if scheme in CLUSTER_SCHEMES:
        if parts.path.strip("/") or query:
            raise ValueError("a redis+cluster:// URL has no path (Cluster has only db 0) and no query")
        return RedisTarget("cluster", url, _nodes(hostlist, 6379), None, 0, username, password, ssl=ssl)
    unknown = sorted(set(query) - _SENTINEL_QUERY)
    if unknown:
        raise ValueError(
            f"unknown query parameter {unknown[0]!r} (known: sentinel_username, sentinel_password)"
        )
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError(
            "a redis+sentinel:// URL needs the service name as its path: /mymaster or /mymaster/0"
        )
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError("the database after the service name must be a number")
    return RedisTarget(
        "sentinel",
        url,
        _nodes(hostlist, 26379),
        path[0],
        int(path[1]) if len(path) == 2 else 0,
        username,
        password,
        query.get("sentinel_username") or None,
        query.get("sentinel_password") or None,
        ssl,
    )

"""Where the proxy listens, which provider, the cookie, the session store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    NoDecode,
)

from ..trusted_proxies import ForwardedHeader, Network, parse_network
from .fields import Cidrs, Duration, _read_secret, _Section
from .providers import ProviderConfig
from .redis_url import parse_redis_url
from .tls import RedisTlsConfig, TlsVersion, check_cert_pair

TRUST_ALL = ("0.0.0.0/0", "::/0")

__all__ = ["CookieConfig", "ProviderConfig", "ServerConfig", "SessionConfig"]


class ServerConfig(_Section):
    listen: str = "0.0.0.0:4180"
    """host:port to listen on."""
    proxy_prefix: str = "/oauth"
    """All of the proxy's own endpoints live under it."""
    trusted_proxies: Cidrs = []
    """CIDRs (or addresses) of the front proxies whose forwarding headers are believed: the client is
    the right-most address of server.forwarded_header that is not one of these (proxy/trusted_proxies.py).
    Empty: the TCP peer is the client and every forwarding header is ignored."""
    forwarded_header: ForwardedHeader = "x-forwarded-for"
    """Which header the trusted proxies maintain: x-forwarded-for (with X-Forwarded-Proto/-Host;
    nginx, ingress-nginx, Traefik, cloud load balancers) or forwarded (RFC 7239). The other is ignored."""
    trust_forwarded_headers: bool = False
    """Deprecated: true is trusted_proxies: ["0.0.0.0/0", "::/0"] (every peer; warned at start-up)."""
    tls_cert_file: Path | None = None
    """Serve HTTPS with this PEM certificate (chain) and tls_key_file; re-read when either changes."""
    tls_key_file: Path | None = None
    tls_min_version: TlsVersion = "1.2"
    """Oldest TLS version accepted from clients: "1.2" or "1.3"."""
    tls_reload_interval: Duration = 5.0
    """How often the certificate files are checked for a change (cert-manager rotates them)."""
    max_header_bytes: int = Field(default=32768, ge=1024)
    """Request header fields together (names + values); more is answered 431. A single field longer
    than this is refused by the HTTP parser itself, with 400 (see proxy/limits.py)."""
    max_body_bytes: int | None = Field(default=None, ge=1)
    """Proxied request bodies: a larger Content-Length is answered 413, a chunked upload is cut at the
    limit. null: no limit (uploads stream). The proxy's own endpoints take at most 64 kB regardless."""
    metrics_listen: str | None = None
    """host:port of a listener of its own for ``GET /metrics`` (e.g. "127.0.0.1:9180"); null: /metrics
    is answered on the main port (and is then never proxied to an upstream)."""
    header_read_timeout: Duration = 10.0
    """From its first byte, a request's line and headers must all arrive within this long, else the
    connection is closed (slowloris). Bodies, WebSockets and streamed answers are not limited by it."""
    keepalive_timeout: Duration = 75.0
    """A connection with no request under way (just opened, or between requests) is closed after this
    long. Keep it longer than the idle timeout of whatever keeps connections open to the proxy (nginx's
    ``keepalive_timeout`` in an ``upstream`` block: 60s; AWS load balancers: 60s), so that the proxy
    never closes a connection that is being reused at that moment."""
    shutdown_grace: Duration = 25.0
    """On SIGTERM: stop accepting, let in-flight requests finish for this long, then cut them and
    close. Keep it below Kubernetes' terminationGracePeriodSeconds (30s by default)."""
    workers: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = "auto"
    """Processes sharing the port (SO_REUSEPORT), each with its own event loop; ``--workers`` wins.
    auto: the CPUs this process may use (affinity and cgroup CPU limit, rounded up; see
    proxy/cpus.py), at most 64; 1 with the memory session store. More than one needs the redis store."""
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    """auto: uvloop when it is installed, else asyncio's own loop."""

    @field_validator("listen", "metrics_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be host:port, got {value!r}")
        return value

    _networks: tuple[Network, ...] = PrivateAttr(())

    @model_validator(mode="after")
    def _metrics_port(self) -> ServerConfig:
        if self.metrics_listen is not None and self.metrics_listen == self.listen:
            raise ValueError("metrics_listen must differ from listen (null serves /metrics on listen)")
        return self

    @model_validator(mode="after")
    def _trust(self) -> ServerConfig:
        if self.trust_forwarded_headers and self.trusted_proxies:
            raise ValueError("trust_forwarded_headers is deprecated: set trusted_proxies only")
        listed = TRUST_ALL if self.trust_forwarded_headers else self.trusted_proxies
        self._networks = tuple(parse_network(v) for v in listed)
        return self

    @model_validator(mode="after")
    def _tls(self) -> ServerConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set tls_cert_file and tls_key_file together")
        if self.tls_cert_file is not None and self.tls_key_file is not None:
            check_cert_pair(self.tls_cert_file, self.tls_key_file, ("tls_cert_file", "tls_key_file"), True)
        return self

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        """``trusted_proxies`` parsed (every address with the deprecated trust_forwarded_headers)."""
        return self._networks

    @field_validator("proxy_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
            raise ValueError(f"must look like '/oauth' (a path, no trailing slash), got {value!r}")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """(host, port) of the metrics listener, or ``None`` when /metrics is on the main port."""
        if self.metrics_listen is None:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)


class CookieConfig(_Section):
    name: str = "_auth_proxy"
    """With secure: true browsers get ``__Host-<name>`` (``__Secure-<name>`` when a domain is set)."""
    secret: Annotated[SecretStr | list[SecretStr] | None, NoDecode] = None
    """At least 32 bytes; keys for signing the cookie are derived from it. A list rotates secrets: the
    first signs, every one is accepted. (From the environment: one secret, taken literally.)"""
    secret_file: Path | None = None
    """One secret per line (blank lines skipped), the first signing: rotation as with a list."""
    secure: bool = True
    domain: str | None = None
    samesite: Literal["lax", "strict", "none"] = "lax"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise ValueError(f"must be 1-64 characters of A-Z a-z 0-9 _ . -, got {value!r}")
        if value.lower().startswith(("__host-", "__secure-")):
            raise ValueError("must not start with __Host- or __Secure-: the prefix is added when secure")
        return value

    @model_validator(mode="after")
    def _check(self) -> CookieConfig:
        if self.secret_file is not None:
            if self.secret is not None:
                raise ValueError("set secret or secret_file, not both")
            text = _read_secret(self.secret_file, "secret_file").get_secret_value()
            lines = [SecretStr(line.strip()) for line in text.splitlines() if line.strip()]
            object.__setattr__(self, "secret", lines)
        listed = isinstance(self.secret, list)
        secrets = self.secret if isinstance(self.secret, list) else [self.secret] if self.secret else []
        if not secrets:
            raise ValueError("secret (or secret_file) of at least 32 bytes is required")
        for i, secret in enumerate(secrets):
            if len(secret.get_secret_value().encode()) < 32:
                where = f"secret[{i}]" if listed and len(secrets) > 1 else "secret (or secret_file)"
                raise ValueError(f"{where} of at least 32 bytes is required")
        if self.samesite == "none" and not self.secure:
            raise ValueError("samesite 'none' requires secure: true (browsers reject it otherwise)")
        return self

    @property
    def secrets_bytes(self) -> tuple[bytes, ...]:
        """Every accepted secret, the signing one first (never empty: guaranteed by _check)."""
        secrets = self.secret if isinstance(self.secret, list) else [self.secret]
        return tuple(s.get_secret_value().encode() for s in secrets if s is not None)

    @property
    def secret_bytes(self) -> bytes:
        """The signing secret."""
        return self.secrets_bytes[0]


class SessionConfig(_Section):
    store: Literal["redis", "memory"] = "redis"
    """redis, or memory (one process only, for development)."""
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """redis:// (rediss://, unix://) for one server; redis+sentinel://h1:26379,h2:26379/mymaster/0 for
    the master Sentinel names; redis+cluster://h1:6379,h2:6379 for a Cluster (proxy/config/redis_url.py)."""
    redis_tls: RedisTlsConfig | None = None
    """For a rediss:// URL (also rediss+sentinel://, rediss+cluster://): ca_file, client_cert,
    client_key, insecure_skip_verify (as upstreams have them). null: the system's CAs, no client cert."""
    lifetime: Duration = 8 * 3600.0
    """Absolute lifetime of a session."""
    idle_timeout: Duration | None = None
    """Sliding: a session unused this long ends (null: only the absolute lifetime applies)."""
    refresh_skew: Duration = 60.0
    """Refresh the access token when it expires within this long."""
    cache_max_age: Duration | None = 60.0
    """Keep open sessions in each process's memory this long (redis store only; null: off). Used
    only while the Redis invalidation feed is up: every change or deletion of a session is published
    and evicts it everywhere within milliseconds, so this only bounds how long a change made behind
    the proxy's back (a key deleted by hand in Redis) can go unseen. At 5 s, with 5,000 sessions in
    use, one request in four or five reloaded its session from Redis (bench/README.md)."""

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: SecretStr) -> SecretStr:
        parse_redis_url(value.get_secret_value())  # ValueError names the problem, never the URL
        return value

    @model_validator(mode="after")
    def _redis_tls(self) -> SessionConfig:
        if self.redis_tls is not None and not parse_redis_url(self.redis_url.get_secret_value()).ssl:
            raise ValueError(
                "redis_tls applies only to rediss://, rediss+sentinel:// and rediss+cluster:// URLs"
            )
        return self

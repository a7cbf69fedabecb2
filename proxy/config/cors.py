"""``cors:`` (global, and ``upstreams[].cors``): validated and compiled once (proxy/cors.py)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from ..cors import CorsPolicy, OriginPattern
from ..origins import check_origin, origin_key
from .fields import _Section

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PATTERN = re.compile(r"(https?)://\*\.([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::([0-9]{1,5}))?", re.ASCII)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_entry(value: str) -> str:
    """``*``, an exact origin, or a pattern ``scheme://*.domain[:port]`` (domain: two labels at least)."""
    if value == "*":
        return value
    if value.strip().lower() == "null":
        raise ValueError("'null' is the origin of sandboxed frames and file: pages, which anyone can make")
    if "*" in value:
        match = _PATTERN.fullmatch(value)
        if match is None:
            raise ValueError(
                f"{value!r}: a pattern is scheme://*.domain[:port] with two labels at least after '*.' "
                "(https://*.example.com), lower case, nothing else"
            )
        port = int(match.group(3) or _DEFAULT_PORTS[match.group(1)])
        if not 0 < port < 65536:
            raise ValueError(f"{value!r}: the port must be 1-65535")
        return value
    return check_origin(value)


def _token(value: str) -> str:
    if value != "*" and not _TOKEN.fullmatch(value):
        raise ValueError(f"{value!r} is not a header name or method")
    return value


Token = Annotated[str, AfterValidator(_token)]


class CorsConfig(_Section):
    """Cross-origin requests from browsers (docs/security.md#cors). No origins: no CORS handling here."""

    allowed_origins: list[Annotated[str, AfterValidator(_origin_entry)]] = []
    """Exact origins (``https://app.example.com``), patterns (``https://*.example.com``: any
    subdomain, not the apex) or ``*`` (any origin; never with credentials)."""
    allow_credentials: bool = False
    """Let pages of those origins send the session cookie and read the answer."""
    allowed_methods: list[Token] = ["GET", "HEAD", "POST"]
    allowed_headers: list[Token] = []
    """Request headers a page may set (``Content-Type``, ``X-Requested-With``); ``*``: any (not with
    credentials)."""
    expose_headers: list[Token] = []
    """Answer headers a page may read besides the safelisted ones."""
    max_age: int = Field(default=600, ge=0, le=86400)
    """Seconds a browser may cache a preflight's answer."""

    _policy: CorsPolicy | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _compile(self) -> CorsConfig:
        if self.allow_credentials:
            for key in ("allowed_origins", "allowed_headers", "expose_headers"):
                if "*" in getattr(self, key):
                    raise ValueError(f"{key}: '*' cannot be used with allow_credentials: true (list them)")
        if "*" in self.allowed_methods:
            raise ValueError("allowed_methods: list the methods ('*' is literal with credentials)")
        exact = frozenset(k for o in self.allowed_origins if "*" not in o for k in [origin_key(o)] if k)
        patterns = []
        for entry in self.allowed_origins:
            match = _PATTERN.fullmatch(entry)
            if match is not None:
                port = int(match.group(3) or _DEFAULT_PORTS[match.group(1)])
                patterns.append(OriginPattern(match.group(1), "." + match.group(2), port))
        self._policy = CorsPolicy(
            exact=exact,
            patterns=tuple(patterns),
            any_origin="*" in self.allowed_origins,
            credentials=self.allow_credentials,
            methods=tuple(dict.fromkeys(self.allowed_methods)),  # case-sensitive, as browsers send them
            headers=frozenset(h.lower() for h in self.allowed_headers if h != "*"),
            any_header="*" in self.allowed_headers,
            expose=tuple(dict.fromkeys(self.expose_headers)),
            max_age=self.max_age,
        )
        return self

    @property
    def policy(self) -> CorsPolicy | None:
        """The compiled policy; ``None`` when no origin is allowed (CORS not handled)."""
        return self._policy if self.allowed_origins else None

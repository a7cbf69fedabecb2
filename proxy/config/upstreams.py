"""The upstreams: where each prefix goes (http(s), ``static://``, ``file://``), its rewrite, TLS,
trusted addresses, CORS, headers and the authorization that narrows the global one there."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, PrivateAttr, field_validator, model_validator

from ..rewrite import Rewrite, check_pattern, check_replacement
from ..trusted_proxies import Network, parse_network
from .cors import CorsConfig
from .fields import Cidrs, Domains, Duration, Emails, Names, _http_url, _Section
from .inject import UpstreamHeaders
from .tls import TlsClientOptions


class RewriteConfig(_Section):
    """A regex substitution on the canonical path after authorization (proxy/rewrite.py)."""

    pattern: str
    """Searched in the canonical (decoded) path; the first match is replaced. Refused at start-up if
    it could backtrack for long: no nested quantifiers, quantified alternations, backreferences or
    lookarounds, at most two unbounded quantifiers."""
    replacement: str
    """The whole path the upstream receives (``\\1``, ``\\g<name>``); must start with ``/``."""

    _compiled: re.Pattern[str] | None = PrivateAttr(None)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        check_pattern(value)  # ValueError says what is unsafe
        return value

    @model_validator(mode="after")
    def _compile(self) -> RewriteConfig:
        self._compiled = check_pattern(self.pattern)
        check_replacement(self._compiled, self.replacement)
        return self

    @property
    def rewrite(self) -> Rewrite:
        assert self._compiled is not None  # compiled by _compile
        return Rewrite(self._compiled, self.replacement)


class UpstreamConfig(TlsClientOptions):
    prefix: str = "/"
    url: str
    """http(s)://host[:port][/base]; static://<status> (answered by the proxy: static://204,
    static://404); file:///absolute/dir (files served from that directory, GET and HEAD)."""
    rewrite: RewriteConfig | None = None
    """{pattern, replacement}: the path sent upstream (or looked up in the directory), made from the
    canonical path after authorization. The url must then have no path."""
    cors: CorsConfig | None = None
    """This prefix's CORS policy, replacing the global ``cors`` (``{allowed_origins: []}``: none here)."""
    timeout: Duration = 30.0
    """No byte from the upstream for this long → 504 (or the stream is cut)."""
    pass_host_header: bool = True
    """Send the client's Host header upstream (else the upstream URL's host)."""
    case_insensitive: bool = False
    """The upstream reads paths regardless of case, and ignores trailing dots and spaces of a segment
    (IIS, Windows or macOS file servers): its prefix then matches case-folded, so ``/ADMIN/x`` meets
    the rules of an upstream at ``/admin`` that sets it. Set it on every upstream of such a server."""
    allowed_email_domains: Domains | None = None
    """Each allowed_* key set here replaces authorization.<key> for this prefix ([] lifts it)."""
    allowed_emails: Emails | None = None
    allowed_groups: Names | None = None
    allowed_roles: Names | None = None
    trusted_ips: Cidrs = []
    """CIDRs (or addresses) whose requests pass to this upstream without sign-in and without identity
    headers, judged on the client address (the peer, or the right-most untrusted hop behind
    server.trusted_proxies), never on a header an untrusted peer sent. Logged and counted."""

    _trusted: tuple[Network, ...] = PrivateAttr(())

    @model_validator(mode="after")
    def _compile_upstream(self) -> UpstreamConfig:
        self.check_tls("url", self.url.lower().startswith("https://"))
        self._trusted = tuple(parse_network(v) for v in self.trusted_ips)
        return self

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return self._trusted

    headers: UpstreamHeaders = UpstreamHeaders()
    """``inject`` and ``groups_filter`` for this prefix, each replacing the global one when set."""
    providers: Names | None = Field(default=None, min_length=1)
    """Only sessions (and bearer tokens) from these providers (ids) may use this prefix; others get 403."""
    acr: Names | None = Field(default=None, min_length=1)
    """Step-up: the session's ID token ``acr`` must be one of these; a browser whose sign-in was
    weaker is sent to sign in again with ``acr_values`` set to them (joined by spaces, in order)."""

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "static":
            static_status(value)
            return value
        if parts.scheme == "file":
            file_root(value)
            return value
        _http_url(value, "url")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value

    @model_validator(mode="after")
    def _rewrite(self) -> UpstreamConfig:
        parts = urlsplit(self.url)
        if parts.scheme in ("static", "file") and self.case_insensitive:
            raise ValueError(f"case_insensitive: the proxy itself answers {parts.scheme}:// upstreams")
        if self.rewrite is None:
            return self
        if parts.scheme == "static":
            raise ValueError("rewrite: a static:// upstream has no path to rewrite")
        if parts.scheme in ("http", "https") and parts.path.strip("/"):
            raise ValueError("rewrite: the url must have no path (the replacement is the whole path)")
        return self


def static_status(url: str) -> int:
    """The status of ``static://<code>``: 200-299 or 400-599 (a 1xx or 3xx needs more than a code)."""
    code = url.removeprefix("static://")
    if not (code.isdigit() and len(code) == 3 and (200 <= int(code) < 300 or 400 <= int(code) < 600)):
        raise ValueError(f"static:// takes a status from 200-299 or 400-599, got {url!r}")
    return int(code)


def file_root(url: str) -> str:
    """The directory of ``file:///dir``: absolute, no host, query or fragment, and existing."""
    parts = urlsplit(url)
    if parts.netloc or parts.query or parts.fragment or not parts.path.startswith("/"):
        raise ValueError(f"file:// takes an absolute directory (file:///srv/site), got {url!r}")
    path = unquote(parts.path)
    if "\x00" in path or not Path(path).is_dir():
        raise ValueError(f"file://: {path!r} is not a directory")
    return path

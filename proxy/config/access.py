"""Who may pass (authorization, bearer API access), the upstreams, headers, pages, logout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from ..claims import DEFAULT_GROUPS_CLAIM, DEFAULT_ROLES_CLAIMS, check_path
from ..fronts import Front
from ..origins import check_origin, origin_key
from ..paths import SkipRoute
from .fields import Domains, Duration, Emails, Names, _claim_paths, _http_url, _Section


class AuthorizationConfig(_Section):
    """Who may pass (global; an upstream may replace any allowed_* key) and what needs no sign-in."""

    allowed_email_domains: Domains = []
    """The email's domain must be one of these (exactly; an unverified email never matches)."""
    allowed_emails: Emails = []
    allowed_groups: Names = []
    """Group names as the groups claim holds them."""
    allowed_roles: Names = []
    """Realm roles as ``role``, client roles as ``client:role`` (``proxy:editor``)."""
    groups_claim: Annotated[str, AfterValidator(check_path)] = DEFAULT_GROUPS_CLAIM
    """Claim path of the groups (``proxy.claims``)."""
    roles_claims: Annotated[list[str], AfterValidator(_claim_paths)] = list(DEFAULT_ROLES_CLAIMS)
    """Claim paths of the roles; a ``*`` segment's key becomes a prefix (``client:role``)."""
    access_token_claims: bool = True
    """Read groups and roles from the access token too, when it is a JWT (Keycloak's are, and put
    realm_access/resource_access only there); read from the token endpoint's answer at sign-in and
    refresh."""
    skip_auth_routes: list[str] = []
    """``METHOD=regex`` or ``regex``: requests that reach the upstream without a session and without
    identity headers. Searched in the decoded, normalised path; anchor them (``^/health$``)."""
    skip_auth_preflight: bool = False
    """Let CORS preflights (OPTIONS with Access-Control-Request-Method) through without a session."""

    _skip_routes: tuple[SkipRoute, ...] = PrivateAttr(())

    @field_validator("skip_auth_routes")
    @classmethod
    def _routes(cls, values: list[str]) -> list[str]:
        for value in values:
            SkipRoute.parse(value)  # ValueError names the entry and the fault
        return values

    @model_validator(mode="after")
    def _compile(self) -> AuthorizationConfig:
        self._skip_routes = tuple(SkipRoute.parse(v) for v in self.skip_auth_routes)
        return self

    @property
    def skip_routes(self) -> tuple[SkipRoute, ...]:
        """``skip_auth_routes``, compiled once when the settings were loaded."""
        return self._skip_routes


class ApiConfig(_Section):
    """Requests with ``Authorization: Bearer <access token>`` from the provider, without a session."""

    accept_bearer: bool = False
    audiences: list[str] | None = Field(default=None, min_length=1)
    """The token's ``aud`` must name one of these; null: [provider.client_id]."""
    authorized_parties: Names = []
    """If set, the token's ``azp`` (the client it was issued to) must be one of these."""
    issuers: list[str] | None = Field(default=None, min_length=1)
    """Bearer tokens are accepted from these providers' issuers (each an issuer_url of the provider
    list); null: from every configured provider. Each token is verified against its issuer's keys."""


class WebSocketConfig(_Section):
    """Which pages may open a WebSocket through the proxy (cross-site WebSocket hijacking: a browser
    sends the session cookie with an upgrade whichever site's script opened it)."""

    allowed_origins: list[Annotated[str, AfterValidator(check_origin)]] = []
    """Origins (``https://app.example.com``, ``http://localhost:8080``) allowed besides the proxy's
    own; each exactly scheme://host[:port], no path or wildcard."""
    allow_missing_origin: bool = False
    """Let an upgrade without an ``Origin`` header through (a script, not a browser: browsers always
    send one), signed in by cookie or on a public route. Bearer-token upgrades never need one."""

    _keys: frozenset[str] = PrivateAttr(frozenset())

    @model_validator(mode="after")
    def _compile(self) -> WebSocketConfig:
        self._keys = frozenset(k for k in map(origin_key, self.allowed_origins) if k is not None)
        return self

    def allows(self, origin: str) -> bool:
        """Whether the ``Origin`` value names one of ``allowed_origins``."""
        return origin_key(origin) in self._keys


class UpstreamConfig(_Section):
    prefix: str = "/"
    url: str
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
        _http_url(value, "url")
        if urlsplit(value).query or urlsplit(value).fragment:
            raise ValueError("must not have a query or fragment")
        return value


class HeadersConfig(_Section):
    max_groups_bytes: int | None = Field(default=2048, ge=256)
    """The groups header is cut to the whole group names that fit (and ...-Groups-Truncated is set):
    nginx reads an auth_request answer into a 4 kB buffer by default and refuses request header
    lines over 8 kB. null: no limit."""
    pass_access_token: bool = False
    """Add X-Auth-Request-Access-Token to /oauth/auth answers (mind nginx's proxy_buffer_size)."""
    no_store: bool = False
    """Answers to signed-in requests get Cache-Control: no-store (the upstream's caching headers
    dropped), so after sign-out the back button can't show them from the browser's cache."""


class PagesConfig(_Section):
    templates_dir: Path | None = None
    """Your own templates: page.html (the layout of every page) and/or error.html, forbidden.html,
    sign_in.html, signed_out.html, signing_out.html; missing ones fall back to the built-in."""
    skip_provider_button: bool = True
    """false: a browser without a session first sees a sign-in page with a button, not the provider."""
    provider_name: str | None = None
    """Shown on the pages ("Sign in with ..."); default: the issuer's host name."""

    @field_validator("templates_dir")
    @classmethod
    def _dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a directory")
        return value


class LogoutConfig(_Section):
    default_redirect: str = "/"
    """Where the provider sends the browser back after sign-out."""
    allowed_redirect_domains: list[str] = []
    """rd / post-logout targets outside the proxy's own host must match (exact host or '.suffix')."""
    max_url_length: int = Field(default=2000, ge=256)
    """Longer end-session URLs are sent by an auto-submitting POST form instead of a 302."""
    mode: Literal["redirect", "backend"] = "redirect"
    """redirect: the browser visits the provider's end_session_endpoint. backend: the proxy POSTs
    there itself (refresh_token + client credentials, as Keycloak supports, and id_token_hint), then
    sends the browser straight to the target: no provider page."""
    revoke_tokens: bool = False
    """Also revoke the refresh token at the provider's revocation_endpoint."""
    allow_get: bool = True
    """GET /oauth/sign_out signs out (plain links work, but so does a cross-site link: logout CSRF).
    false: only a POST carrying the session's CSRF token signs out; a GET shows a confirmation page."""
    frontchannel: bool = False
    """Serve GET /oauth/frontchannel_logout (OIDC Front-Channel Logout; off: 404). It ends only the
    session of the browser that sends it, and only if its cookie names a session of the given sid;
    a frame from the provider's (cross-site) page carries the cookie only with cookie.samesite: none."""


class AuthRequestConfig(_Section):
    """``/oauth/auth``: which front proxy asks, and so which headers describe the original request."""

    front: Front = "none"
    """nginx (deploy/nginx/), ingress-nginx (``auth-url``) or traefik (``forwardAuth``): only that
    front's headers are read (proxy/fronts.py), every other copy is ignored. none (the default): the
    proxy is told nothing about the original request, so no public route applies at /oauth/auth (every
    request needs a session) and ``?redirect=1`` answers 401."""

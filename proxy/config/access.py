"""Who may pass (authorization, bearer API access), headers, pages, logout, the auth subrequest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from ..claims import DEFAULT_GROUPS_CLAIM, DEFAULT_ROLES_CLAIMS, check_path
from ..fronts import Front
from ..oidc.logout_url import check_template
from ..origins import check_origin, origin_key
from ..paths import SkipRoute
from .fields import Domains, Emails, Names, _claim_paths, _Section
from .inject import DEFAULT_INJECT, InjectList, check_filter
from .rules import RuleConfig


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
    require_verified_email: bool = False
    """Email rules see an address only when the provider says ``email_verified: true``. Off, only an
    explicit false hides it; turn it on for providers that leave the claim out when it is false
    (zitadel/oidc does, docs/providers.md)."""
    skip_auth_routes: list[str] = []
    """``METHOD=regex`` or ``regex``: requests that reach the upstream without a session and without
    identity headers. Searched in the decoded, normalised path; anchor them (``^/health$``)."""
    skip_auth_preflight: bool = False
    """Let CORS preflights (OPTIONS with Access-Control-Request-Method) through without a session."""
    rules: list[RuleConfig] = []
    """Per-route rules (proxy/rules.py): the first whose path and method match applies, on top of the
    allowed_* lists above and the upstream's (it narrows or denies, never lifts them)."""

    _skip_routes: tuple[SkipRoute, ...] = PrivateAttr(())
    _extra_claim_paths: tuple[str, ...] = PrivateAttr(())

    @field_validator("skip_auth_routes")
    @classmethod
    def _routes(cls, values: list[str]) -> list[str]:
        for value in values:
            SkipRoute.parse(value)  # ValueError names the entry and the fault
        return values

    @model_validator(mode="after")
    def _compile(self) -> AuthorizationConfig:
        self._skip_routes = tuple(SkipRoute.parse(v) for v in self.skip_auth_routes)
        paths = (p for rule in self.rules for p in rule.claim_paths())
        self._extra_claim_paths = tuple(dict.fromkeys(paths))
        return self

    def read_claim_paths(self, paths: tuple[str, ...]) -> None:
        """Also read these claim paths into identities (``headers.inject``; set by the settings)."""
        self._extra_claim_paths = tuple(dict.fromkeys((*self._extra_claim_paths, *paths)))

    @property
    def extra_claim_paths(self) -> tuple[str, ...]:
        """Claim paths read into ``Identity.claims`` besides groups and roles."""
        return self._extra_claim_paths

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
    untyped_access_tokens: bool = False
    """Also accept JWT access tokens that say nothing of their kind (header ``typ: JWT`` or none, no
    ``typ`` claim: ZITADEL, Entra ID, Okta), which an ID token could otherwise pass for. Needs
    ``audiences`` set without provider.client_id (ID tokens are addressed to the client that signs
    users in), and such a token must not carry ``nonce``, ``at_hash``, ``c_hash`` or ``s_hash``."""
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


class HeadersConfig(_Section):
    max_groups_bytes: int | None = Field(default=2048, ge=256)
    """The groups header is cut to the whole group names that fit (and ...-Groups-Truncated is set):
    nginx reads an auth_request answer into a 4 kB buffer by default and refuses request header
    lines over 8 kB. null: no limit."""
    pass_access_token: bool = False
    """Add X-Auth-Request-Access-Token to /oauth/auth answers (mind nginx's proxy_buffer_size)."""
    inject: InjectList = list(DEFAULT_INJECT)
    """Headers built from claims or tokens for every upstream (and as X-Auth-Request-* in /oauth/auth's
    answer): name, source (roles, groups, access_token, id_token) or claim (a claim path), prefix,
    separator, max_bytes. Client copies of every listed name are dropped (underscore spellings too)."""
    groups_filter: Annotated[str | None, AfterValidator(check_filter)] = None
    """Only the groups this regex matches (re.match, from the start of the name; bounded like the
    rules' regexes) go into X-Forwarded-Groups and injected groups. Headers only: rules see all."""
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
    send_post_logout_redirect_uri: bool = True
    """Send ``post_logout_redirect_uri`` to the end_session_endpoint. false for a provider that refuses
    any it has not registered and registers none (the browser then stays on the provider's own
    signed-out page)."""
    provider_logout_url: str | None = None
    """A provider whose sign-out is not RP-Initiated Logout (no end_session_endpoint in discovery):
    a URL template, e.g. Auth0's ``https://TENANT/v2/logout?client_id={client_id}&returnTo=
    {post_logout_redirect_uri}``. Placeholders: {client_id}, {post_logout_redirect_uri},
    {id_token_hint}, each percent-encoded, after the host only; https (http only to a loopback host).
    When set it is used instead of the discovered end_session_endpoint (proxy/oidc/logout_url.py)."""

    @field_validator("provider_logout_url")
    @classmethod
    def _logout_url(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)


class AuthRequestConfig(_Section):
    """``/oauth/auth``: which front proxy asks, and so which headers describe the original request."""

    front: Front = "none"
    """nginx (deploy/nginx/), ingress-nginx (``auth-url``) or traefik (``forwardAuth``): only that
    front's headers are read (proxy/fronts.py), every other copy is ignored. none (the default): the
    proxy is told nothing about the original request, so no public route applies at /oauth/auth (every
    request needs a session) and ``?redirect=1`` answers 401."""

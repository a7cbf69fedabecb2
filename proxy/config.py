"""Settings: one YAML file, every key overridable from the environment, validated once at start-up.

Environment overrides use ``AUTH_PROXY_`` + section + ``__`` + key, upper case, e.g.
``AUTH_PROXY_PROVIDER__CLIENT_SECRET``. Secrets may also come from files (``client_secret_file``,
``secret_file``). Unknown keys are errors. Loading does no network I/O; connectivity is checked by
the app's cleanup contexts and ``/ready``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .claims import DEFAULT_GROUPS_CLAIM, DEFAULT_ROLES_CLAIMS, check_path
from .paths import SkipRoute
from .sessions.redis_url import parse_redis_url

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``"8h"``, ``"30m"``, ``"10s"``, ``"250ms"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as '8h', '30m' or '10s' is required")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float: YAML reads 400 digits as one
            raise ValueError("a duration must be a positive, finite number") from None
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration such as '8h', '30m', '10s' or '250ms'")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("a duration must be a positive, finite number")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _http_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key} must be an absolute http(s) URL, got {value!r}")
    return value


def _read_secret(path: Path, key: str) -> SecretStr:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {str(path)!r}: {exc.strerror}") from None
    if not text:
        raise ValueError(f"{key}: {str(path)!r} is empty")
    return SecretStr(text)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    listen: str = "0.0.0.0:4180"
    """host:port to listen on."""
    proxy_prefix: str = "/oauth"
    """All of the proxy's own endpoints live under it."""
    trust_forwarded_headers: bool = False
    """Believe X-Forwarded-Proto/-Host/-For from the client (set true only behind a trusted proxy)."""
    max_header_bytes: int = Field(default=32768, ge=1024)
    """Request header fields together (names + values); more is answered 431. A single field longer
    than this is refused by the HTTP parser itself, with 400 (see proxy/limits.py)."""
    max_body_bytes: int | None = Field(default=None, ge=1)
    """Proxied request bodies: a larger Content-Length is answered 413, a chunked upload is cut at the
    limit. null: no limit (uploads stream). The proxy's own endpoints take at most 64 kB regardless."""
    metrics_listen: str | None = None
    """host:port of a listener of its own for ``GET /metrics`` (e.g. "127.0.0.1:9180"); null: /metrics
    is answered on the main port (and is then never proxied to an upstream)."""
    shutdown_grace: Duration = 25.0
    """On SIGTERM: stop accepting, let in-flight requests finish for this long, then cut them and
    close. Keep it below Kubernetes' terminationGracePeriodSeconds (30s by default)."""
    workers: int = Field(default=1, ge=1, le=64)
    """Processes sharing the port (SO_REUSEPORT), each with its own event loop; ``--workers`` wins.
    More than one needs the redis session store."""
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

    @model_validator(mode="after")
    def _metrics_port(self) -> ServerConfig:
        if self.metrics_listen is not None and self.metrics_listen == self.listen:
            raise ValueError("metrics_listen must differ from listen (null serves /metrics on listen)")
        return self

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


class ProviderConfig(_Section):
    issuer_url: str
    """The issuer; discovery is read from <issuer>/.well-known/openid-configuration."""
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    scopes: list[str] = ["openid", "email", "profile"]
    redirect_url: str | None = None
    """Default: <request origin><proxy_prefix>/callback."""
    timeout: Duration = 10.0
    """Timeout of each request to the provider."""

    @field_validator("issuer_url")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _http_url(value, "issuer_url").rstrip("/")

    @field_validator("redirect_url")
    @classmethod
    def _redirect(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "redirect_url")

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("must include 'openid'")
        return value

    @model_validator(mode="after")
    def _secret(self) -> ProviderConfig:
        if self.client_secret_file is not None:
            if self.client_secret is not None:
                raise ValueError("set client_secret or client_secret_file, not both")
            object.__setattr__(
                self, "client_secret", _read_secret(self.client_secret_file, "client_secret_file")
            )
        if self.client_secret is None or not self.client_secret.get_secret_value():
            raise ValueError("client_secret (or client_secret_file) is required")
        return self

    @property
    def secret(self) -> str:
        assert self.client_secret is not None  # guaranteed by _secret
        return self.client_secret.get_secret_value()


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
    the master Sentinel names; redis+cluster://h1:6379,h2:6379 for a Cluster (proxy/sessions/redis_url.py)."""
    lifetime: Duration = 8 * 3600.0
    """Absolute lifetime of a session."""
    idle_timeout: Duration | None = None
    """Sliding: a session unused this long ends (null: only the absolute lifetime applies)."""
    refresh_skew: Duration = 60.0
    """Refresh the access token when it expires within this long."""
    cache_max_age: Duration | None = 5.0
    """Keep open sessions in each process's memory this long (redis store only; null: off). Used
    only while the Redis invalidation feed is up, so a sign-out anywhere reaches every process."""

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: SecretStr) -> SecretStr:
        parse_redis_url(value.get_secret_value())  # ValueError names the problem, never the URL
        return value


def _names(values: list[str]) -> list[str]:
    names = [v.strip() for v in values]
    if any(not n for n in names):
        raise ValueError("entries must not be empty")
    return names


def _emails(values: list[str]) -> list[str]:
    emails = [v.strip().lower() for v in values]
    bad = [e for e in emails if e.count("@") != 1 or e.startswith("@") or e.endswith("@")]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an email address")
    return emails


def _domains(values: list[str]) -> list[str]:
    domains = [v.strip().lower().removeprefix("@") for v in values]
    bad = [d for d in domains if not re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*", d)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a domain such as 'example.com'")
    return domains


def _claim_paths(values: list[str]) -> list[str]:
    return [check_path(v) for v in values]


Names = Annotated[list[str], AfterValidator(_names)]
Emails = Annotated[list[str], AfterValidator(_emails)]
Domains = Annotated[list[str], AfterValidator(_domains)]


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


class UpstreamConfig(_Section):
    prefix: str = "/"
    url: str
    timeout: Duration = 30.0
    """No byte from the upstream for this long → 504 (or the stream is cut)."""
    pass_host_header: bool = True
    """Send the client's Host header upstream (else the upstream URL's host)."""
    allowed_email_domains: Domains | None = None
    """Each allowed_* key set here replaces authorization.<key> for this prefix ([] lifts it)."""
    allowed_emails: Emails | None = None
    allowed_groups: Names | None = None
    allowed_roles: Names | None = None

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTH_PROXY_",
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    server: ServerConfig = ServerConfig()
    provider: ProviderConfig
    cookie: CookieConfig
    session: SessionConfig = SessionConfig()
    upstreams: list[UpstreamConfig] = []
    authorization: AuthorizationConfig = AuthorizationConfig()
    api: ApiConfig = ApiConfig()
    headers: HeadersConfig = HeadersConfig()
    logout: LogoutConfig = LogoutConfig()
    pages: PagesConfig = PagesConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the YAML file (passed in as init values).
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _cross(self) -> Settings:
        prefixes = [u.prefix for u in self.upstreams]
        dupes = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if dupes:
            raise ValueError(f"upstreams: prefix {dupes[0]!r} is listed twice")
        return self


class ConfigError(Exception):
    """The configuration cannot be used; the message names every bad key."""


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  {key}: {msg}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any), apply the environment and ``overrides``, validate once."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {str(path)!r} is not UTF-8 text") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(path)!r} must be a mapping of sections")
        data = loaded or {}
    data.update(overrides)
    # Settings(**data) would take "_env_prefix" and friends as pydantic-settings options: refuse them.
    bad = sorted(str(k) for k in data if not isinstance(k, str) or k.startswith("_"))
    if bad:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {k}: unknown key" for k in bad))
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format(exc)) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration from the environment: {exc}") from None

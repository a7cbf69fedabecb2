"""Settings: one YAML file, every key overridable from the environment, validated once at start-up.

Environment overrides use ``AUTH_PROXY_`` + section + ``__`` + key, upper case, e.g.
``AUTH_PROXY_PROVIDER__CLIENT_SECRET``. Secrets may also come from files (``client_secret_file``,
``secret_file``). Unknown keys are errors. Loading does no network I/O; connectivity is checked by
the app's cleanup contexts and ``/ready``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from .access import (
    ApiConfig,
    AuthorizationConfig,
    AuthRequestConfig,
    HeadersConfig,
    LogoutConfig,
    PagesConfig,
    WebSocketConfig,
)  # fmt: skip
from .cors import CorsConfig
from .fields import Duration, parse_duration
from .providers import DEFAULT_PROVIDER, PassThrough, check_providers
from .sections import CookieConfig, ProviderConfig, ServerConfig, SessionConfig
from .upstreams import UpstreamConfig

__all__ = [
    "ApiConfig", "AuthorizationConfig", "ConfigError", "CorsConfig", "CookieConfig", "Duration",
    "HeadersConfig", "LogoutConfig", "PagesConfig", "ProviderConfig", "ServerConfig", "SessionConfig",
    "Settings", "UpstreamConfig", "WebSocketConfig", "load_settings", "parse_duration", "AuthRequestConfig",
    "DEFAULT_PROVIDER", "PassThrough",
]  # fmt: skip


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTH_PROXY_",
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    server: ServerConfig = ServerConfig()
    provider: ProviderConfig | None = None
    providers: list[ProviderConfig] = []
    cookie: CookieConfig
    session: SessionConfig = SessionConfig()
    upstreams: list[UpstreamConfig] = []
    authorization: AuthorizationConfig = AuthorizationConfig()
    api: ApiConfig = ApiConfig()
    headers: HeadersConfig = HeadersConfig()
    logout: LogoutConfig = LogoutConfig()
    pages: PagesConfig = PagesConfig()
    auth_request: AuthRequestConfig = AuthRequestConfig()
    websocket: WebSocketConfig = WebSocketConfig()
    cors: CorsConfig = CorsConfig()

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
        check_providers(self.provider, self.providers)
        prefixes = [u.prefix for u in self.upstreams]
        dupes = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if dupes:
            raise ValueError(f"upstreams: prefix {dupes[0]!r} is listed twice")
        api = self.api
        signing_in = [p.client_id for p in self.all_providers]
        if api.untyped_access_tokens and (not api.audiences or set(signing_in) & set(api.audiences)):
            raise ValueError(
                "api.untyped_access_tokens: needs api.audiences naming the API's audience, not "
                f"a provider's client_id {signing_in} (an ID token is addressed to it)"
            )
        lists = [self.headers.inject, *(u.headers.inject or () for u in self.upstreams)]
        claim_paths = tuple(h.claim for inject in lists for h in inject if h.claim is not None)
        self.authorization.read_claim_paths(claim_paths)  # read into identities at sign-in/refresh
        known = self.all_providers
        ids = [p.id for p in known]
        for i, up in enumerate(self.upstreams):
            for name in up.providers or ():
                if name not in ids:
                    raise ValueError(f"upstreams[{i}].providers: no provider has the id {name!r}")
        issuers = [p.issuer_url for p in known]
        for issuer in self.api.issuers or ():
            if issuer.rstrip("/") not in issuers:
                raise ValueError(f"api.issuers: {issuer!r} is not the issuer_url of a configured provider")
        return self

    @property
    def all_providers(self) -> tuple[ProviderConfig, ...]:
        """The providers in force, the first being the default (the only one of ``provider:``)."""
        return check_providers(self.provider, self.providers)


_KEYED = re.compile(r"[a-z_]+(\[\d+\])?(\.[a-z_]+)*: ")


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
        if not err["loc"] and _KEYED.match(msg):  # a cross-section check that names its key itself
            lines.append(f"  {msg}")
            continue
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

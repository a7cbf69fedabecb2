"""The sign-in providers: one ``provider:`` or a ``providers:`` list, and what each sign-in sends.

``auth_params`` are fixed extra parameters of the authorization request; ``pass_through_params`` is
an allow-list of parameters ``/oauth/start`` may take from its own query (each with the values, or
a pattern, it may have). Neither may name a parameter the flow's security rests on
(:data:`RESERVED_PARAMS`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from .fields import Duration, _http_url, _read_secret, _Section
from .tls import TlsClientOptions

DEFAULT_PROVIDER = "default"
"""The id of the provider of the single ``provider:`` form."""
RESERVED_PARAMS = frozenset({
    "client_id", "client_secret", "code_challenge", "code_challenge_method", "code_verifier", "nonce",
    "redirect_uri", "request", "request_uri", "response_mode", "response_type", "scope", "state",
    "provider", "rd",
})  # fmt: skip
"""Authorization-request parameters that only the proxy sets (``provider`` and ``rd`` are
``/oauth/start``'s own): refused as ``auth_params`` or ``pass_through_params``, never passed on."""
MAX_PARAM_VALUE = 256
"""The longest value ``/oauth/start`` passes through (longer: 400, before any pattern runs)."""
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_PARAM = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


def _param_name(name: str, key: str) -> str:
    if not _PARAM.fullmatch(name):
        raise ValueError(f"{key}: {name!r} is not a parameter name (letters, digits, _ . -)")
    if name.lower() in RESERVED_PARAMS:
        raise ValueError(f"{key}: {name!r} is reserved: only the proxy sets it")
    return name


class PassThrough(_Section):
    """What one pass-through parameter may be: one of ``values``, or a full match of ``pattern``."""

    values: list[str] | None = Field(default=None, min_length=1)
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one(self) -> PassThrough:
        if (self.values is None) == (self.pattern is None):
            raise ValueError("set values or pattern (exactly one)")
        return self

    def allows(self, value: str) -> bool:
        if len(value) > MAX_PARAM_VALUE or not value.isprintable():
            return False
        if self.values is not None:
            return value in self.values
        assert self.pattern is not None
        return re.fullmatch(self.pattern, value) is not None


class ProviderConfig(TlsClientOptions):
    id: str = DEFAULT_PROVIDER
    """Names the provider in ``/oauth/start?provider=<id>``, ``upstreams[].providers`` and sessions."""
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    """Shown on the sign-in page ("Sign in with ..."); default: pages.provider_name (single provider)
    or the issuer's host name."""
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
    userinfo: Literal["auto", "always", "never"] = "auto"
    """Read the UserInfo endpoint at sign-in and refresh for the profile claims. auto: when the ID token
    carries none of email, preferred_username, name (providers that put them only there once an access
    token is issued, as OIDC Core 5.4 allows) and discovery names a userinfo_endpoint. Its claims only
    fill in what the ID token lacks, and only when its sub is the ID token's (proxy/oidc/userinfo.py)."""
    auth_params: dict[str, str] = {}
    """Fixed extra parameters of every authorization request (e.g. {kc_idp_hint: corp-saml})."""
    pass_through_params: dict[str, PassThrough] = {}
    """Parameters /oauth/start may pass from its query: {login_hint: {pattern: ...}, prompt:
    {values: [login]}}. Anything else in its query is ignored; a listed one with a value not
    allowed is answered 400."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(f"must be 1-32 of a-z 0-9 _ - (starting with a letter or digit), got {value!r}")
        return value

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

    @field_validator("auth_params")
    @classmethod
    def _auth_params(cls, value: dict[str, str]) -> dict[str, str]:
        for name, param in value.items():
            _param_name(name, "auth_params")
            if len(param) > MAX_PARAM_VALUE or not param.isprintable():
                raise ValueError(
                    f"auth_params: {name!r} must be printable, at most {MAX_PARAM_VALUE} characters"
                )
        return value

    @field_validator("pass_through_params")
    @classmethod
    def _pass_through(cls, value: dict[str, PassThrough]) -> dict[str, PassThrough]:
        for name in value:
            _param_name(name, "pass_through_params")
        return value

    @model_validator(mode="after")
    def _provider_tls(self) -> ProviderConfig:
        self.check_tls("issuer_url", self.issuer_url.lower().startswith("https://"))
        return self

    @model_validator(mode="after")
    def _secret(self) -> ProviderConfig:
        both = sorted(set(self.auth_params) & set(self.pass_through_params))
        if both:
            raise ValueError(f"{both[0]!r} is both in auth_params and pass_through_params")
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


def check_providers(
    single: ProviderConfig | None, listed: list[ProviderConfig]
) -> tuple[ProviderConfig, ...]:
    """The providers in force; ``ValueError`` naming the key when the two forms clash or repeat."""
    if single is not None and listed:
        raise ValueError("providers: set provider or providers, not both")
    if single is None and not listed:
        raise ValueError("provider: required key is missing (or a providers: list)")
    if single is not None:
        return (single,)
    ids: dict[str, int] = {}
    issuers: dict[str, int] = {}
    for i, cfg in enumerate(listed):
        if cfg.id in ids:
            raise ValueError(f"providers[{i}].id: {cfg.id!r} is also providers[{ids[cfg.id]}].id")
        if cfg.issuer_url in issuers:
            raise ValueError(
                f"providers[{i}].issuer_url: the issuer of providers[{issuers[cfg.issuer_url]}] too "
                "(logout tokens and bearer tokens are matched to their provider by issuer)"
            )
        ids[cfg.id], issuers[cfg.issuer_url] = i, i
    return tuple(listed)

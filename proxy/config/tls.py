"""TLS settings: the client side (provider, upstreams, Redis) and the checks shared by them.

Files are read once here, at start-up, so that a missing file, a certificate that isn't PEM or a key
that doesn't match its certificate stops the process naming the key; ``proxy.tls`` builds the
contexts from the same files.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, model_validator

from .fields import _Section

TlsVersion = Annotated[
    Literal["1.2", "1.3"],
    BeforeValidator(lambda v: f"{v:.1f}" if isinstance(v, float) else v),  # YAML reads 1.2 as a float
]


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError):
        return exc.strerror
    return getattr(exc, "reason", None) or str(exc) or type(exc).__name__


def check_ca_file(path: Path, key: str) -> None:
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{key}: cannot load CA certificates from {str(path)!r}: {_reason(exc)}") from None


def check_cert_pair(cert: Path, key_file: Path, keys: tuple[str, str], server: bool = False) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_cert_chain(str(cert), str(key_file))
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{keys[0]}/{keys[1]}: cannot load the certificate {str(cert)!r} with the key "
            f"{str(key_file)!r}: {_reason(exc)}"
        ) from None


class TlsClientOptions(_Section):
    """How the proxy checks a server it connects to over TLS, and which certificate it shows."""

    ca_file: Path | None = None
    """PEM file of the CA(s) that signed the server's certificate; only these are trusted (not the
    system's). null: the system's CAs."""
    client_cert: Path | None = None
    """PEM certificate the proxy presents (mutual TLS); needs client_key."""
    client_key: Path | None = None
    """PEM private key of client_cert (unencrypted)."""
    insecure_skip_verify: bool = False
    """Accept any certificate, for any name: anyone on the path can read and change the traffic.
    Logged as a warning at start-up and shown by the auth_proxy_tls_verify_disabled metric."""

    @property
    def tls_configured(self) -> bool:
        return bool(self.ca_file or self.client_cert or self.client_key or self.insecure_skip_verify)

    def check_tls(self, url_key: str, url_is_tls: bool) -> None:
        """``ValueError`` naming the key for every unusable TLS option."""
        if self.tls_configured and not url_is_tls:
            raise ValueError(
                f"ca_file, client_cert, client_key and insecure_skip_verify apply only to TLS: "
                f"{url_key} does not use it"
            )
        if self.insecure_skip_verify and self.ca_file is not None:
            raise ValueError("set ca_file or insecure_skip_verify, not both (the latter verifies nothing)")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("set client_cert and client_key together")
        if self.ca_file is not None:
            check_ca_file(self.ca_file, "ca_file")
        if self.client_cert is not None and self.client_key is not None:
            check_cert_pair(self.client_cert, self.client_key, ("client_cert", "client_key"))


class RedisTlsConfig(TlsClientOptions):
    """``session.redis_tls``: for ``rediss://`` (also ``rediss+sentinel://`` and ``rediss+cluster://``)."""

    @model_validator(mode="after")
    def _check(self) -> RedisTlsConfig:
        self.check_tls("session.redis_url", True)  # the URL's scheme is checked by SessionConfig
        return self


def redis_ssl_kwargs(tls: TlsClientOptions | None) -> dict[str, Any]:
    """redis-py's ``ssl_*`` arguments for ``tls`` (passed only to TLS connections)."""
    if tls is None:
        return {"ssl_min_version": ssl.TLSVersion.TLSv1_2}
    out: dict[str, Any] = {"ssl_min_version": ssl.TLSVersion.TLSv1_2}
    if tls.ca_file is not None:
        out["ssl_ca_certs"] = str(tls.ca_file)
    if tls.client_cert is not None and tls.client_key is not None:
        out["ssl_certfile"], out["ssl_keyfile"] = str(tls.client_cert), str(tls.client_key)
    if tls.insecure_skip_verify:
        out["ssl_cert_reqs"], out["ssl_check_hostname"] = "none", False
    return out

"""TLS contexts: the proxy's own listener (reloaded when cert-manager rotates the files) and the
clients it uses for the provider, the upstreams and Redis.

A client context verifies the server's certificate and name against ``ca_file`` (only it) or the
system's CAs; nothing ever falls back to not verifying: a wrong CA is an error (the provider: 503
and /ready; an upstream: 502; Redis: 503), logged with OpenSSL's reason. ``insecure_skip_verify``
turns verification off for one target only, is logged as a warning at start-up and shows in
``auth_proxy_tls_verify_disabled{target}``.

The server context is one ``ssl.SSLContext`` for the process's lifetime: ``load_cert_chain`` on it
again replaces the certificate for every handshake from then on (connections already open keep
theirs). A task owned by the app's cleanup context looks at the files every
``server.tls_reload_interval``; a new pair is tried on a scratch context first, and a pair that
doesn't load (cert-manager writes the two files one after the other) is logged and tried again at
the next look, the old certificate staying in use meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from pathlib import Path

from .config import DEFAULT_PROVIDER, ServerConfig, Settings
from .config.tls import TlsClientOptions
from .metrics_registry import Metrics

log = logging.getLogger(__name__)

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def client_context(options: TlsClientOptions) -> ssl.SSLContext:
    """A context for connecting to a server as ``options`` say (TLS 1.2 at least)."""
    context = ssl.create_default_context(cafile=str(options.ca_file) if options.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.client_cert is not None and options.client_key is not None:
        context.load_cert_chain(str(options.client_cert), str(options.client_key))
    return context


def client_ssl(options: TlsClientOptions) -> ssl.SSLContext | bool:
    """What aiohttp's ``ssl=`` takes: a context when anything is configured, else ``True`` (the
    system's CAs, verified)."""
    return client_context(options) if options.tls_configured else True


def insecure_targets(settings: Settings) -> list[str]:
    """Every target whose certificate is not verified (``insecure_skip_verify``)."""
    targets = [
        "provider" if p.id == DEFAULT_PROVIDER else f"provider {p.id}"
        for p in settings.all_providers
        if p.insecure_skip_verify
    ]
    targets += [f"upstream {u.prefix}" for u in settings.upstreams if u.insecure_skip_verify]
    tls = settings.session.redis_tls
    if tls is not None and tls.insecure_skip_verify:
        targets.append("redis")
    return targets


def warn_insecure(settings: Settings, metrics: Metrics) -> None:
    """The start-up warning and the metric for each ``insecure_skip_verify``."""
    gauge = metrics.tls_verify_disabled
    for target in insecure_targets(settings):
        gauge.labels(target).set(1)
        log.warning(
            "TLS certificate verification is OFF for %s (insecure_skip_verify): anyone on the network "
            "path can read and change this traffic", target,
            extra={"event": "tls_insecure", "target": target},
        )  # fmt: skip


def _stamp(*paths: Path) -> tuple[tuple[int, int, int], ...] | None:
    """What changes when a file is replaced (mtime, inode, size: a Kubernetes secret volume swaps a
    symlink); ``None`` when one can't be read."""
    try:
        return tuple((s.st_mtime_ns, s.st_ino, s.st_size) for s in (os.stat(p) for p in paths))
    except OSError:
        return None


class ServerTls:
    """The listener's context, and its certificate files."""

    def __init__(self, server: ServerConfig) -> None:
        assert server.tls_cert_file is not None and server.tls_key_file is not None
        self.cert, self.key = server.tls_cert_file, server.tls_key_file
        self.interval = server.tls_reload_interval
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = _VERSIONS[server.tls_min_version]
        self.context.set_alpn_protocols(["http/1.1"])
        self._stamp = _stamp(self.cert, self.key)
        self.context.load_cert_chain(str(self.cert), str(self.key))
        self.reloads = 0

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed since the last successful load; whether it did."""
        stamp = _stamp(self.cert, self.key)
        if stamp is None or stamp == self._stamp:
            return False
        try:
            self._load_checked()
        except (OSError, ssl.SSLError) as exc:
            log.warning(
                "TLS certificate files changed but don't load (yet): %s; keeping the previous one",
                getattr(exc, "reason", None) or exc, extra={"event": "tls_reload_failed"},
            )  # fmt: skip
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded", extra={"event": "tls_reloaded", "cert_file": str(self.cert)})
        return True

    def _load_checked(self) -> None:
        """Load the pair into the live context only once it loads into a scratch one: a failed
        ``load_cert_chain`` can leave the new certificate installed with the old key (every
        handshake would then fail). Both are loaded from one private copy of the files, so a
        rotation between the two loads can't mix them."""
        with tempfile.TemporaryDirectory(prefix="auth-proxy-tls-") as directory:
            cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
            key.touch(mode=0o600)
            key.write_bytes(self.key.read_bytes())
            cert.write_bytes(self.cert.read_bytes())
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key))
            self.context.load_cert_chain(str(cert), str(key))

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.reload_if_changed()

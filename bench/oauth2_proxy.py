"""The second peer: oauth2-proxy (Go), built from the Go module proxy into a cache outside the repo,
signed in through the same Keycloak with a client of its own, sessions in a Redis of its own.

    .venv/bin/python bench/oauth2_proxy.py          # build it if missing and print the binary's path

``binary()`` runs ``go install github.com/oauth2-proxy/oauth2-proxy/v7@VERSION`` into
``~/.cache/auth-proxy/oauth2-proxy/VERSION/`` (``$XDG_CACHE_HOME`` if set) the first time; minutes on
a small machine. Nothing of it goes into the repo.

``keycloak_client`` registers a confidential client for it through Keycloak's admin API for the
duration of the run (redirect URIs of the given ports' ``/oauth2/callback``, a ``groups`` claim like
the proxy's client, access tokens of an hour so nothing expires or refreshes mid-run) and deletes it
afterwards.

``oauth2_proxy`` runs it with its defaults except what the comparison needs (see ``flags``): the OIDC
provider, ``--session-store-type=redis``, a cookie secret, the upstream, plain HTTP, no request log.
``GOMAXPROCS`` is set to ``gomaxprocs`` when given, else left unset (the Go runtime uses every core).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from served import served  # noqa: E402

from tests.support.keycloak_admin import admin_token  # noqa: E402

VERSION = "v7.15.6"
MODULE = "github.com/oauth2-proxy/oauth2-proxy/v7"
COOKIE_NAME = "_oauth2_proxy"  # its default; the CSRF cookie is _oauth2_proxy_csrf, cleared at the callback
# 32 bytes: AES-256 for the session ticket's payload in Redis, as with the other two
COOKIE_SECRET = "bench-oauth2-proxy-secret-012345"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "auth-proxy" / "oauth2-proxy" / VERSION


def binary() -> Path:
    """The oauth2-proxy binary, built with ``go install`` into the cache when missing."""
    target = cache_dir() / "oauth2-proxy"
    if target.exists():
        return target
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise RuntimeError(f"oauth2-proxy is not built at {target} and there is no `go` to build it")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"building oauth2-proxy {VERSION} with go install (minutes) ...", flush=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as gobin:  # renamed in place once complete
        env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"}
        built = subprocess.run([go, "install", f"{MODULE}@{VERSION}"], env=env, cwd=gobin,
                               capture_output=True, text=True)  # fmt: skip
        if built.returncode != 0:
            raise RuntimeError(f"go install {MODULE}@{VERSION} failed: {built.stderr[-2000:]}")
        os.replace(Path(gobin) / "oauth2-proxy", target)
    return target


@contextmanager
def keycloak_client(kc: str, realm: str, ports: list[int]) -> Iterator[tuple[str, str]]:
    """A client of its own in ``realm`` for the run: ``(client_id, secret)``; deleted afterwards.
    (Synchronous: the run's steps each have an event loop of their own.)"""
    client_id, secret = f"bench-oauth2-proxy-{os.getpid()}", secrets.token_urlsafe(24)
    client = {
        "clientId": client_id, "name": "bench: oauth2-proxy", "enabled": True, "protocol": "openid-connect",
        "publicClient": False, "clientAuthenticatorType": "client-secret", "secret": secret,
        "standardFlowEnabled": True, "directAccessGrantsEnabled": False, "frontchannelLogout": False,
        "redirectUris": [f"http://127.0.0.1:{p}/oauth2/callback" for p in ports],
        "attributes": {"access.token.lifespan": "3600", "post.logout.redirect.uris": "+"},
        "protocolMappers": [{
            "name": "groups", "protocol": "openid-connect", "protocolMapper": "oidc-group-membership-mapper",
            "config": {"claim.name": "groups", "full.path": "false", "id.token.claim": "true",
                       "access.token.claim": "true", "userinfo.token.claim": "true"},
        }],
    }  # fmt: skip

    async def admin(method: str, url: str, **kwargs: object) -> tuple[int, str, str]:
        headers = {"Authorization": f"Bearer {await admin_token(kc)}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.request(method, url, **kwargs) as r:  # type: ignore[arg-type]
                return r.status, r.headers.get("Location", ""), await r.text()

    status, location, text = asyncio.run(admin("POST", f"{kc}/admin/realms/{realm}/clients", json=client))
    if status != 201:
        raise RuntimeError(f"registering {client_id} at Keycloak: {status} {text}")
    try:
        yield client_id, secret
    finally:
        status, _, text = asyncio.run(admin("DELETE", location))
        if status not in (204, 404):
            print(f"bench: could not delete Keycloak client {client_id}: {status} {text}", file=sys.stderr)


def flags(
    *, port: int, upstream_url: str, redis_url: str, issuer: str, client_id: str, secret: str
) -> list[str]:
    return [
        f"--http-address=127.0.0.1:{port}",
        "--provider=oidc",
        f"--oidc-issuer-url={issuer}",
        f"--client-id={client_id}",
        f"--client-secret={secret}",
        f"--redirect-url=http://127.0.0.1:{port}/oauth2/callback",
        "--email-domain=*",  # anyone the provider signs in, as with the other two
        f"--cookie-secret={COOKIE_SECRET}",
        "--cookie-secure=false",  # plain HTTP on loopback, as with the other two
        "--session-store-type=redis",
        f"--redis-connection-url={redis_url}",
        f"--upstream={upstream_url.rstrip('/')}/",
        # X-Forwarded-User, -Email, -Preferred-Username, -Groups upstream (its default, said out loud);
        # X-Auth-Request-* on /oauth2/auth's 202, what nginx auth_request copies
        "--pass-user-headers=true",
        "--set-xauthrequest=true",
        "--request-logging=false",  # no access log, as with the other two
    ]


@contextmanager
def oauth2_proxy(
    *,
    port: int,
    upstream_url: str,
    redis_url: str,
    issuer: str,
    client_id: str,
    secret: str,
    gomaxprocs: int | None,
    log: Path,
) -> Iterator[subprocess.Popen[bytes]]:
    """oauth2-proxy on 127.0.0.1:``port``; its standard and auth log go to ``log``."""
    env = {k: v for k, v in os.environ.items() if k != "GOMAXPROCS" and not k.startswith("OAUTH2_PROXY_")}
    if gomaxprocs is not None:
        env["GOMAXPROCS"] = str(gomaxprocs)
    cmd = [str(binary()), *flags(port=port, upstream_url=upstream_url, redis_url=redis_url, issuer=issuer,
                                 client_id=client_id, secret=secret)]  # fmt: skip
    output = log.open("wb")
    with served(cmd, port=port, name="oauth2-proxy", output=output, logs=log.read_text, env=env) as proc:
        yield proc


if __name__ == "__main__":
    print(binary())

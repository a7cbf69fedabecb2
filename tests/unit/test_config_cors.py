"""cors: what start-up accepts and refuses, naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config import ConfigError, load_settings
from proxy.routing import Router

BASE: dict[str, Any] = {
    "provider": {"issuer_url": "https://idp.example.com", "client_id": "c", "client_secret": "s"},
    "cookie": {"secret": "x" * 32},
}


def load(**overrides: Any) -> Any:
    return load_settings(None, **BASE, **overrides)


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        (
            {"allowed_origins": ["*"], "allow_credentials": True},
            r"cors: allowed_origins: '\*' cannot be used",
        ),
        (
            {"allowed_origins": ["https://a.example"], "allow_credentials": True, "allowed_headers": ["*"]},
            r"cors: allowed_headers: '\*' cannot be used",
        ),  # fmt: skip
        (
            {"allowed_origins": ["https://a.example"], "allow_credentials": True, "expose_headers": ["*"]},
            r"cors: expose_headers: '\*' cannot be used",
        ),  # fmt: skip
        ({"allowed_origins": ["null"]}, r"cors\.allowed_origins\.0: 'null' is the origin of sandboxed"),
        ({"allowed_origins": ["https://app.example.com/"]}, r"cors\.allowed_origins\.0: .* is not an origin"),
        ({"allowed_origins": ["app.example.com"]}, r"cors\.allowed_origins\.0: .* is not an origin"),
        ({"allowed_origins": ["https://*example.com"]}, r"cors\.allowed_origins\.0: .*a pattern is"),
        ({"allowed_origins": ["https://*.com"]}, r"cors\.allowed_origins\.0: .*two labels"),
        ({"allowed_origins": ["https://a.*.example.com"]}, r"cors\.allowed_origins\.0: .*a pattern is"),
        ({"allowed_origins": ["*.example.com"]}, r"cors\.allowed_origins\.0: .*a pattern is"),
        ({"allowed_origins": ["https://*.example.com:99999"]}, r"cors\.allowed_origins\.0: .*port"),
        ({"allowed_origins": ["https://a.example"], "allowed_methods": ["*"]}, r"cors: allowed_methods"),
        (
            {"allowed_origins": ["https://a.example"], "allowed_methods": ["GET POST"]},
            r"cors\.allowed_methods\.0: 'GET POST' is not",
        ),  # fmt: skip
        (
            {"allowed_origins": ["https://a.example"], "allowed_headers": ["X-A:b"]},
            r"cors\.allowed_headers\.0",
        ),
        ({"allowed_origins": ["https://a.example"], "max_age": -1}, r"cors\.max_age"),
        ({"allowed_origins": ["https://a.example"], "max_age": 86401}, r"cors\.max_age"),
        ({"allowed_origin": ["https://a.example"]}, r"cors\.allowed_origin: unknown key"),
    ],
)
def test_bad_cors_is_refused_naming_the_key(cors: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(cors=cors)


def test_the_same_checks_hold_per_upstream() -> None:
    upstream = {
        "prefix": "/",
        "url": "http://app",
        "cors": {"allowed_origins": ["*"], "allow_credentials": True},
    }
    with pytest.raises(ConfigError, match=r"upstreams\.0\.cors: allowed_origins: '\*' cannot be used"):
        load(upstreams=[upstream])


def test_an_upstream_block_replaces_the_global_one() -> None:
    settings = load(
        cors={"allowed_origins": ["https://global.example"]},
        upstreams=[
            {"prefix": "/", "url": "http://app"},
            {"prefix": "/api/", "url": "http://api", "cors": {"allowed_origins": ["https://spa.example"]}},
            {"prefix": "/none/", "url": "http://x", "cors": {"allowed_origins": []}},
        ],
    )
    router = Router(settings.upstreams, settings.cors.policy)
    root, api, none = router.route("/x"), router.route("/api/x"), router.route("/none/x")
    assert root is not None and root.cors is not None and root.cors.allows("https://global.example")
    assert api is not None and api.cors is not None
    assert api.cors.allows("https://spa.example") and not api.cors.allows("https://global.example")
    assert none is not None and none.cors is None
    assert load().cors.policy is None  # no origins: CORS is not handled at all

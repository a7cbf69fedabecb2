"""proxy.config: load_settings() from YAML, keyword overrides and the environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config import ConfigError, Settings, load_settings

COOKIE_SECRET = "c" * 32

WriteConfig = Callable[[Any], Path]


def base() -> dict[str, Any]:
    """The smallest valid configuration, as the YAML file would hold it."""
    return {
        "provider": {
            "issuer_url": "https://idp.example.com/realms/main",
            "client_id": "proxy",
            "client_secret": "client-s3cret",
        },
        "cookie": {"secret": COOKIE_SECRET},
    }


def with_section(section: str, **values: Any) -> dict[str, Any]:
    data = base()
    data[section] = {**data.get(section, {}), **values}
    return data


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own AUTH_PROXY_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("AUTH_PROXY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write a dict as YAML (or a str verbatim) to a config file and return its path."""

    def write(content: Any) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
        return path

    return write


def config_error(**data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(**data)
    return str(info.value)


# --- loading ---------------------------------------------------------------------------------


def test_yaml_file_is_loaded_with_secure_defaults(write_config: WriteConfig) -> None:
    settings = load_settings(write_config(base()))

    assert isinstance(settings, Settings)
    assert settings.provider.issuer_url == "https://idp.example.com/realms/main"
    assert settings.provider.secret == "client-s3cret"
    assert settings.cookie.secret_bytes == COOKIE_SECRET.encode()
    assert settings.cookie.secure is True
    assert settings.cookie.samesite == "lax"
    assert settings.session.lifetime == 8 * 3600
    assert settings.server.proxy_prefix == "/oauth"
    assert settings.server.trust_forwarded_headers is False


def test_keyword_overrides_without_a_file() -> None:
    settings = load_settings(**base(), session={"lifetime": "1h", "store": "memory"})

    assert settings.session.lifetime == 3600
    assert settings.session.store == "memory"


def test_keyword_overrides_replace_a_file_section(write_config: WriteConfig) -> None:
    path = write_config(with_section("session", lifetime="8h", store="memory"))

    settings = load_settings(path, session={"lifetime": "2h"})

    assert settings.session.lifetime == 7200
    assert settings.session.store == "redis"  # the whole section was replaced


def test_issuer_trailing_slash_is_removed() -> None:
    data = base()
    data["provider"]["issuer_url"] += "/"

    assert load_settings(**data).provider.issuer_url == "https://idp.example.com/realms/main"


def test_secrets_are_masked_in_repr() -> None:
    text = repr(load_settings(**base()))

    assert "client-s3cret" not in text
    assert COOKIE_SECRET not in text


# --- the environment -------------------------------------------------------------------------


def test_environment_wins_over_the_file(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(with_section("session", lifetime="8h"))
    monkeypatch.setenv("AUTH_PROXY_PROVIDER__CLIENT_SECRET", "from-env")
    monkeypatch.setenv("AUTH_PROXY_SESSION__LIFETIME", "30m")

    settings = load_settings(path)

    assert settings.provider.secret == "from-env"
    assert settings.session.lifetime == 1800
    # the rest of each section still comes from the file
    assert settings.provider.client_id == "proxy"
    assert settings.provider.issuer_url == "https://idp.example.com/realms/main"


def test_environment_wins_over_keyword_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PROXY_SESSION__LIFETIME", "10s")

    assert load_settings(**base(), session={"lifetime": "1h"}).session.lifetime == 10


def test_bad_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PROXY_SESSION__LIFETIME", "8 hours")

    assert "session.lifetime" in config_error(**base())


def test_unparseable_environment_section_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PROXY_UPSTREAMS", "not json")

    assert "upstreams" in config_error(**base())


# --- secrets from files ----------------------------------------------------------------------


def test_client_secret_is_read_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "client_secret"
    secret_file.write_text("  file-secret\n", encoding="utf-8")
    data = base()
    del data["provider"]["client_secret"]
    data["provider"]["client_secret_file"] = str(secret_file)

    assert load_settings(**data).provider.secret == "file-secret"


def test_cookie_secret_is_read_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "cookie_secret"
    secret_file.write_text("s" * 40 + "\n", encoding="utf-8")
    data = base()
    data["cookie"] = {"secret_file": str(secret_file)}

    assert load_settings(**data).cookie.secret_bytes == b"s" * 40


@pytest.mark.parametrize(
    ("section", "key"),
    [("provider", "client_secret_file"), ("cookie", "secret_file")],
    ids=["provider", "cookie"],
)
def test_secret_and_secret_file_together_are_refused(tmp_path: Path, section: str, key: str) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("f" * 40, encoding="utf-8")

    message = config_error(**with_section(section, **{key: str(secret_file)}))

    assert f"{section}:" in message
    assert "not both" in message


def test_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    data = base()
    del data["provider"]["client_secret"]
    data["provider"]["client_secret_file"] = str(tmp_path / "missing")

    message = config_error(**data)

    assert "client_secret_file" in message
    assert "cannot read" in message


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "empty"
    secret_file.write_text("\n", encoding="utf-8")
    data = base()
    data["cookie"] = {"secret_file": str(secret_file)}

    assert "is empty" in config_error(**data)


def test_missing_client_secret_is_refused() -> None:
    data = base()
    del data["provider"]["client_secret"]

    assert "client_secret (or client_secret_file) is required" in config_error(**data)


# --- unknown and missing keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({**base(), "serverr": {}}, "serverr"),
        (with_section("provider", client_secrett="x"), "provider.client_secrett"),
        (with_section("cookie", secur=True), "cookie.secur"),
        ({**base(), "upstreams": [{"url": "http://app:8080", "prefx": "/"}]}, "upstreams.0.prefx"),
    ],
    ids=["top-level", "provider", "cookie", "upstream-list-item"],
)
def test_unknown_key_is_named(data: dict[str, Any], key: str) -> None:
    assert f"{key}: unknown key" in config_error(**data)


def test_underscore_top_level_key_is_unknown(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError, match="_env_prefix"):
        load_settings(write_config({**base(), "_env_prefix": "OTHER_"}))


@pytest.mark.parametrize(
    ("drop", "key"),
    [
        (("provider",), "provider"),
        (("cookie",), "cookie"),
        (("provider", "client_id"), "provider.client_id"),
        (("provider", "issuer_url"), "provider.issuer_url"),
    ],
    ids=["provider", "cookie", "client_id", "issuer_url"],
)
def test_missing_required_key_is_named(drop: tuple[str, ...], key: str) -> None:
    data = base()
    if len(drop) == 1:
        del data[drop[0]]
    else:
        del data[drop[0]][drop[1]]

    assert f"{key}: required key is missing" in config_error(**data)


def test_missing_upstream_url_is_named() -> None:
    assert "upstreams.0.url: required key is missing" in config_error(**base(), upstreams=[{"prefix": "/"}])


def test_every_error_is_reported_at_once() -> None:
    data = with_section("provider", client_secrett="x")
    del data["cookie"]

    message = config_error(**data)

    assert "provider.client_secrett: unknown key" in message
    assert "cookie: required key is missing" in message


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["c" * 31, "", "é" * 15], ids=["31-bytes", "empty", "30-bytes-utf8"])
def test_short_cookie_secret_is_refused_and_not_echoed(secret: str) -> None:
    message = config_error(**with_section("cookie", secret=secret))

    assert "cookie:" in message
    assert "at least 32 bytes" in message
    if secret:
        assert secret not in message


def test_cookie_secret_length_counts_bytes() -> None:
    assert load_settings(**with_section("cookie", secret="é" * 16)).cookie.secret_bytes == ("é" * 16).encode()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("8h", 8 * 3600),
        ("30m", 1800),
        ("10s", 10),
        ("250ms", 0.25),
        ("2d", 2 * 86400),
        ("1.5h", 5400),
        (90, 90),
        (2.5, 2.5),
        ("90", 90),
        (" 5m ", 300),
    ],
    ids=lambda v: repr(v),
)
def test_duration(value: object, seconds: float) -> None:
    assert load_settings(**with_section("session", lifetime=value)).session.lifetime == seconds


@pytest.mark.parametrize(
    "value",
    ["8 hours", "8hours", "h", "", "-5s", "0s", 0, -1, "1e3", "5 m s", True, [1]],
    ids=lambda v: repr(v),
)
def test_bad_duration_is_named(value: object) -> None:
    assert "session.lifetime" in config_error(**with_section("session", lifetime=value))


@pytest.mark.parametrize("text", [".nan", ".inf"])
def test_non_finite_duration_is_refused(write_config: WriteConfig, text: str) -> None:
    path = write_config(yaml.safe_dump(base()) + f"session:\n  lifetime: {text}\n")

    with pytest.raises(ConfigError, match="session.lifetime"):
        load_settings(path)


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("[::1]:4180", "::1", 4180),
        (":9000", "0.0.0.0", 9000),
        ("proxy.internal:65535", "proxy.internal", 65535),
    ],
)
def test_listen(listen: str, host: str, port: int) -> None:
    server = load_settings(**base(), server={"listen": listen}).server

    assert (server.host, server.port) == (host, port)


@pytest.mark.parametrize("listen", ["8080", "host:", "host:0", "host:65536", "host:http", "host:-1", ""])
def test_bad_listen_is_named(listen: str) -> None:
    assert "server.listen" in config_error(**base(), server={"listen": listen})


@pytest.mark.parametrize("prefix", ["/oauth", "/auth/proxy", "/_p", "/o-2.x~"])
def test_proxy_prefix(prefix: str) -> None:
    assert load_settings(**base(), server={"proxy_prefix": prefix}).server.proxy_prefix == prefix


@pytest.mark.parametrize("prefix", ["oauth", "/oauth/", "/", "", "/o auth", "/oauth?x=1", "//oauth"])
def test_bad_proxy_prefix_is_named(prefix: str) -> None:
    assert "server.proxy_prefix" in config_error(**base(), server={"proxy_prefix": prefix})


def test_scopes_without_openid_are_refused() -> None:
    message = config_error(**with_section("provider", scopes=["email", "profile"]))

    assert "provider.scopes: must include 'openid'" in message


@pytest.mark.parametrize("value", ["sometimes", "", True, ["auto"]])
def test_bad_userinfo_mode_is_named(value: object) -> None:
    assert "provider.userinfo" in config_error(**with_section("provider", userinfo=value))


def test_provider_logout_url_is_checked_at_start_up() -> None:
    good = "https://t.example.com/v2/logout?client_id={client_id}&returnTo={post_logout_redirect_uri}"
    assert (
        load_settings(**with_section("logout", provider_logout_url=good)).logout.provider_logout_url == good
    )
    message = config_error(**with_section("logout", provider_logout_url="https://t.example.com/?to={rd}"))
    assert "logout.provider_logout_url" in message and "unknown placeholder {rd}" in message
    for key in ("send_post_logout_redirect_uri",):
        assert f"logout.{key}" in config_error(**with_section("logout", **{key: "maybe"}))
    message = config_error(**with_section("authorization", require_verified_email="maybe"))
    assert "authorization.require_verified_email" in message


@pytest.mark.parametrize("url", ["ftp://idp.example.com", "idp.example.com", "https://"])
def test_issuer_must_be_an_http_url(url: str) -> None:
    assert "provider.issuer_url" in config_error(**with_section("provider", issuer_url=url))


def test_samesite_none_requires_secure() -> None:
    message = config_error(**with_section("cookie", samesite="none", secure=False))

    assert "cookie:" in message
    assert "samesite 'none' requires secure" in message


def test_samesite_none_with_secure_is_accepted() -> None:
    assert load_settings(**with_section("cookie", samesite="none")).cookie.samesite == "none"


@pytest.mark.parametrize("name", ["", "a b", "a;b", "x" * 65])
def test_bad_cookie_name_is_named(name: str) -> None:
    assert "cookie.name" in config_error(**with_section("cookie", name=name))


def test_redis_url_scheme_is_checked_without_echoing_the_password() -> None:
    message = config_error(**base(), session={"redis_url": "http://user:hunter2@redis:6379"})

    assert "session.redis_url" in message
    assert "hunter2" not in message


def test_duplicate_upstream_prefixes_are_refused() -> None:
    upstreams = [{"prefix": "/app", "url": "http://a:1"}, {"prefix": "/app", "url": "http://b:2"}]

    assert "prefix '/app' is listed twice" in config_error(**base(), upstreams=upstreams)


def test_distinct_upstream_prefixes_are_accepted() -> None:
    upstreams = [{"prefix": "/", "url": "http://a:1"}, {"prefix": "/app", "url": "http://b:2/base"}]

    assert [u.prefix for u in load_settings(**base(), upstreams=upstreams).upstreams] == ["/", "/app"]


@pytest.mark.parametrize(
    ("upstream", "key"),
    [
        ({"prefix": "app", "url": "http://a:1"}, "upstreams.0.prefix"),
        ({"url": "http://a:1/?x=1"}, "upstreams.0.url"),
        ({"url": "http://a:1/#frag"}, "upstreams.0.url"),
        ({"url": "unix:/run/app.sock"}, "upstreams.0.url"),
    ],
    ids=["prefix-without-slash", "query", "fragment", "not-http"],
)
def test_bad_upstream_is_named(upstream: dict[str, str], key: str) -> None:
    assert key in config_error(**base(), upstreams=[upstream])


# --- the file itself -------------------------------------------------------------------------


def test_invalid_yaml(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_settings(write_config("provider: [unclosed\n"))


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"], ids=["list", "str", "int"])
def test_yaml_that_is_not_a_mapping(write_config: WriteConfig, text: str) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(write_config(text))


def test_empty_yaml_file_means_no_settings(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError, match="required key is missing"):
        load_settings(write_config(""))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"provider:\n  client_id: caf\xe9\n")

    with pytest.raises(ConfigError):
        load_settings(path)


def test_non_string_top_level_key(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError):
        load_settings(write_config(yaml.safe_dump(base()) + "1: x\n"))

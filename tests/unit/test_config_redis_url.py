"""Parsing where Redis is: standalone, Sentinel and Cluster URLs; errors name the problem and never
repeat the URL (it may carry a password)."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config import ConfigError, load_settings
from proxy.config.redis_url import RedisTarget, parse_redis_url


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@r.example:6380/2", "unix:///run/r.sock"]
)
def test_standalone_urls_go_to_redis_py_as_they_are(url: str) -> None:
    assert parse_redis_url(url) == RedisTarget("standalone", url, ssl=url.startswith("rediss:"))


def test_sentinel_url() -> None:
    url = (
        "redis+sentinel://app:p%40ss@s1.example:26380,s2.example,[::1]:26381/mymaster/3?sentinel_password=spw"
    )
    target = parse_redis_url(url)
    assert target.kind == "sentinel"
    assert target.nodes == (("s1.example", 26380), ("s2.example", 26379), ("::1", 26381))
    assert (target.service, target.db) == ("mymaster", 3)
    assert (target.username, target.password) == ("app", "p@ss")
    assert (target.sentinel_username, target.sentinel_password) == (None, "spw")
    assert target.ssl is False


def test_sentinel_url_defaults_and_tls() -> None:
    target = parse_redis_url("rediss+sentinel://:secret@s1/mymaster")
    assert target.nodes == (("s1", 26379),)
    assert (target.service, target.db, target.username, target.password) == ("mymaster", 0, None, "secret")
    assert target.ssl is True


def test_cluster_url() -> None:
    target = parse_redis_url("redis+cluster://n1:7000,n2:7001,n3")
    assert target.kind == "cluster"
    assert target.nodes == (("n1", 7000), ("n2", 7001), ("n3", 6379))
    assert parse_redis_url("rediss+cluster://u:p@n1:7000/").ssl is True


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://r:6379", "must be a redis://"),
        ("redis+sentinel://s1:26379", "service name"),
        ("redis+sentinel://s1:26379/a/b/c", "service name"),
        ("redis+sentinel://s1:26379/mymaster/zero", "must be a number"),
        ("redis+sentinel://s1:26379/mymaster?password=x", "unknown query parameter 'password'"),
        ("redis+sentinel:///mymaster", "names no host"),
        ("redis+sentinel://s1:port/mymaster", "not a number"),
        ("redis+sentinel://s1:99999/mymaster", "not a number"),
        ("redis+cluster://n1:7000,,n2:7001", "needs a name"),
        ("redis+cluster://n1:7000/1", "no path"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_redis_url(url)


def _settings(redis_url: str) -> Any:
    return load_settings(
        None,
        provider={"issuer_url": "http://kc/realms/x", "client_id": "p", "client_secret": "s"},
        cookie={"secret": "s" * 32},
        session={"redis_url": redis_url},
    )


def test_config_takes_every_form_and_names_the_key_without_the_password() -> None:
    for url in ("redis+sentinel://s1,s2/mymaster/0", "redis+cluster://n1:7000,n2:7000", "redis://r/0"):
        assert _settings(url).session.redis_url.get_secret_value() == url
    with pytest.raises(ConfigError) as err:
        _settings("redis+sentinel://:hunter2@s1:26379")
    assert "session.redis_url" in str(err.value) and "service name" in str(err.value)
    assert "hunter2" not in str(err.value)

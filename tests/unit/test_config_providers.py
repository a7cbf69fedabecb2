"""providers:, auth_params, pass_through_params, upstreams[].providers/acr, api.issuers: every bad
value stops start-up with a message naming its key; the single provider: form is unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config import ConfigError, load_settings
from tests.unit.test_config import base


def two() -> dict[str, Any]:
    data = base()
    one = data.pop("provider")
    data["providers"] = [
        {**one, "id": "corp"},
        {**one, "id": "partners", "issuer_url": "https://idp.example.com/realms/partners"},
    ]
    return data


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(None, **data)
    return str(info.value)


def test_the_single_form_is_one_default_provider() -> None:
    settings = load_settings(None, **base())
    assert [p.id for p in settings.all_providers] == ["default"]


def test_a_list_of_providers() -> None:
    settings = load_settings(None, **two())
    assert [p.id for p in settings.all_providers] == ["corp", "partners"]


def with_provider(**extra: Any) -> dict[str, Any]:
    data = base()
    data["provider"] = {**data["provider"], **extra}
    return data


def with_upstream(**extra: Any) -> dict[str, Any]:
    data = two()
    data["upstreams"] = [{"prefix": "/", "url": "http://127.0.0.1:9", **extra}]
    return data


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({**two(), "provider": base()["provider"]}, "providers: set provider or providers, not both"),
        ({k: v for k, v in base().items() if k != "provider"}, "provider: required key is missing"),
        ({**two(), "providers": [two()["providers"][0]] * 2},
         "providers[1].id: 'corp' is also providers[0].id"),
        ({**two(), "providers": [two()["providers"][0], {**two()["providers"][0], "id": "x"}]},
         "providers[1].issuer_url"),
        ({**two(), "providers": [{**two()["providers"][0], "id": "Bad Id"}]}, "providers.0.id"),
        (with_provider(auth_params={"redirect_uri": "https://evil.test/"}), "provider.auth_params"),
        (with_provider(auth_params={"State": "x"}), "'State' is reserved"),
        (with_provider(auth_params={"prompt": "a\nb"}), "must be printable"),
        (with_provider(pass_through_params={"client_id": {"values": ["x"]}}), "provider.pass_through_params"),
        (with_provider(pass_through_params={"nonce": {"pattern": "x"}}), "'nonce' is reserved"),
        (with_provider(pass_through_params={"prompt": {}}), "set values or pattern"),
        (with_provider(pass_through_params={"prompt": {"values": ["x"], "pattern": "x"}}),
         "set values or pattern"),
        (with_provider(pass_through_params={"prompt": {"pattern": "("}}), "not a regular expression"),
        (with_provider(pass_through_params={"prompt": {"values": []}}), "prompt.values"),
        (with_provider(pass_through_params={"bad name": {"values": ["x"]}}), "is not a parameter name"),
        (with_provider(auth_params={"prompt": "login"}, pass_through_params={"prompt": {"values": ["x"]}}),
         "'prompt' is both in auth_params and pass_through_params"),
        (with_upstream(providers=["nope"]), "upstreams[0].providers: no provider has the id 'nope'"),
        (with_upstream(providers=[]), "upstreams.0.providers"),
        (with_upstream(acr=[]), "upstreams.0.acr"),
        ({**two(), "api": {"issuers": ["https://elsewhere.test/"]}}, "api.issuers: 'https://elsewhere.test/'"),
    ],
)  # fmt: skip
def test_bad_provider_config_names_the_key(data: dict[str, Any], needle: str) -> None:
    assert needle in error_of(data)


def test_pass_through_values_are_bounded() -> None:
    settings = load_settings(None, **with_provider(pass_through_params={"login_hint": {"pattern": ".*"}}))
    spec = settings.all_providers[0].pass_through_params["login_hint"]
    assert spec.allows("ann") and not spec.allows("a" * 257) and not spec.allows("a\r\nb")


def test_the_environment_still_sets_the_single_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PROXY_PROVIDER__CLIENT_SECRET", "from-env")
    settings = load_settings(None, **base())
    assert settings.all_providers[0].secret == "from-env"


def test_a_step_up_passes_whatever_the_acr_values_allow_list_says() -> None:
    from proxy.signin import ParamRefused, sign_in_params

    settings = load_settings(
        None, **with_provider(pass_through_params={"acr_values": {"values": ["silver"]}})
    )
    cfg = settings.all_providers[0]
    assert sign_in_params(cfg, {"acr_values": "gold"}, [], frozenset({"gold"})) == (("acr_values", "gold"),)
    assert sign_in_params(cfg, {"acr_values": "silver"}, [], frozenset()) == (("acr_values", "silver"),)
    with pytest.raises(ParamRefused):
        sign_in_params(cfg, {"acr_values": "gold"}, [], frozenset())

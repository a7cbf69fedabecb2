"""proxy.oidc.logout_url: where the browser goes to end the provider's session (pure)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from proxy.oidc.logout_url import provider_logout_url

ENDPOINT = "https://idp.example.com/logout"
AUTH0 = "https://t.example.com/v2/logout?client_id={client_id}&returnTo={post_logout_redirect_uri}"


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def logout(**overrides: Any) -> tuple[str, dict[str, str]] | None:
    args: dict[str, Any] = {
        "template": None,
        "end_session_endpoint": ENDPOINT,
        "client_id": "proxy",
        "id_token_hint": "id.tok.en",
        "post_logout_redirect_uri": "https://proxy.example.com/bye?x=1&y=2",
    }
    return provider_logout_url(**{**args, **overrides})


def test_rp_initiated_logout_parameters() -> None:
    found = logout()
    assert found is not None
    url, params = found
    assert url.startswith(ENDPOINT + "?")
    assert params == {
        "client_id": "proxy",
        "post_logout_redirect_uri": "https://proxy.example.com/bye?x=1&y=2",
        "id_token_hint": "id.tok.en",
    }
    assert query(url) == {k: [v] for k, v in params.items()}


@pytest.mark.parametrize("hint", [None, ""], ids=["none", "empty"])
def test_no_id_token_hint_without_an_id_token(hint: str | None) -> None:
    found = logout(id_token_hint=hint)
    assert found is not None and "id_token_hint" not in found[1]


def test_post_logout_redirect_uri_can_be_left_out() -> None:
    found = logout(send_post_logout_redirect_uri=False)
    assert found is not None and set(found[1]) == {"client_id", "id_token_hint"}


def test_the_endpoints_own_query_is_kept() -> None:
    found = logout(end_session_endpoint=ENDPOINT + "?ui_locales=de", id_token_hint=None)
    assert found is not None
    assert urlsplit(found[0]).path == "/logout"
    assert query(found[0])["ui_locales"] == ["de"] and query(found[0])["client_id"] == ["proxy"]


def test_a_template_wins_over_the_endpoint_and_has_no_form_parameters() -> None:
    found = logout(template=AUTH0)
    assert found is not None
    url, params = found
    assert params == {}
    assert url.startswith("https://t.example.com/v2/logout?")
    assert query(url) == {"client_id": ["proxy"], "returnTo": ["https://proxy.example.com/bye?x=1&y=2"]}


def test_neither_is_none() -> None:
    assert logout(end_session_endpoint=None) is None
    assert logout(end_session_endpoint="") is None

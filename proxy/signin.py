"""Which provider a sign-in goes to and what it asks of it: pure functions over the settings.

- :func:`sign_in_params`: the extra authorization-request parameters of a ``/oauth/start``: the
  provider's fixed ``auth_params``, then each ``pass_through_params`` entry found in the query with an
  allowed value, then a step-up ``acr_values`` that some upstream's ``acr`` asks for. Reserved
  parameters (``proxy.config.providers.RESERVED_PARAMS``) are never taken from the query.
- :func:`acr_satisfied` / :func:`step_up_values`: an upstream's ``acr`` requirement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from .config import ProviderConfig, UpstreamConfig
from .config.providers import MAX_PARAM_VALUE, RESERVED_PARAMS

ACR_VALUES = "acr_values"


class ParamRefused(ValueError):
    """A pass-through parameter with a value the configuration does not allow (→ 400)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"sign-in parameter {name!r} has a value that is not allowed")
        self.name = name


def step_up_values(upstreams: Iterable[UpstreamConfig]) -> frozenset[str]:
    """The ``acr_values`` the proxy itself sends browsers to sign in with (one per upstream ``acr``)."""
    return frozenset(" ".join(u.acr) for u in upstreams if u.acr)


def sign_in_params(
    cfg: ProviderConfig, query: Mapping[str, str], repeated: Sequence[str], step_ups: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """The extra parameters for this sign-in; :class:`ParamRefused` for a disallowed value or a
    repeated pass-through parameter (``repeated``: names the query has more than once)."""
    params = dict(cfg.auth_params)
    for name, spec in cfg.pass_through_params.items():
        value = query.get(name)
        if value is None:
            continue
        step_up = name == ACR_VALUES and value in step_ups
        if name in repeated or not (spec.allows(value) or step_up):
            raise ParamRefused(name)
        params[name] = value
    wanted = query.get(ACR_VALUES)
    if ACR_VALUES not in cfg.pass_through_params and wanted is not None:
        if ACR_VALUES in repeated or wanted not in step_ups:
            raise ParamRefused(ACR_VALUES)
        params[ACR_VALUES] = wanted
    assert not RESERVED_PARAMS & {n.lower() for n in params}  # config validation refused them
    assert all(len(v) <= MAX_PARAM_VALUE for v in params.values())
    return tuple(params.items())


def acr_satisfied(required: Sequence[str] | None, acr: str | None) -> bool:
    """Whether a sign-in of strength ``acr`` meets an upstream's ``acr`` list (any one of them)."""
    return not required or (acr is not None and acr in required)


def acr_verdict(
    required: Sequence[str], acr: str | None, requested: str | None, *, session: bool
) -> Literal["ok", "step_up", "refuse"]:
    """What to do with a principal of strength ``acr`` at an upstream requiring ``required``:
    pass; send them to sign in again asking for it (a session whose sign-in did not already ask
    for exactly that: no redirect loop when the provider can't or won't deliver it); or refuse."""
    if acr_satisfied(required, acr):
        return "ok"
    if session and requested != " ".join(required):
        return "step_up"
    return "refuse"

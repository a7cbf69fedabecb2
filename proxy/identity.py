"""Who is asking: the signed-in :class:`Identity` and the :class:`Principal` a request acts as.

Nothing here knows how an identity was proven or where it is kept: sessions (``proxy.sessions``)
store one, bearer tokens (``proxy.oidc.bearer``) carry one, and the authorisation rules
(``proxy.authz``) and identity headers (``proxy.forward_headers``) read one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple


@dataclass(frozen=True)
class Identity:
    """Who is signed in, as the upstream and the authorisation rules see it."""

    sub: str
    email: str | None = None
    preferred_username: str | None = None
    name: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    """Roles as the configured claim paths name them: Keycloak realm roles as ``role``, client roles
    as ``client:role`` (``proxy.claims``). Sessions stored before this field read as no roles."""
    email_verified: bool | None = None
    """The ``email_verified`` claim; ``None`` when the provider doesn't say. Email rules never match
    an address the provider calls unverified."""
    claims: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``(claim path, values)`` for each extra claim path the configuration reads (rules' ``claims``,
    ``headers.inject``), taken with groups and roles at sign-in and refresh (``proxy.claims``)."""

    def __post_init__(self) -> None:
        # Stored sessions come back from JSON with lists: keep them tuples (hashable, comparable).
        for name in ("groups", "roles"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)):
                raise TypeError(f"Identity.{name} must be a sequence of names, not a string")
            object.__setattr__(self, name, tuple(value))
        pairs = tuple((str(path), tuple(str(v) for v in values)) for path, values in self.claims)
        object.__setattr__(self, "claims", pairs)
        # Identities key the per-user memos (headers, rule verdicts) of every request: hash once.
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, f.name) for f in fields(self))))

    def __hash__(self) -> int:  # the dataclass's own, computed once (kept: defined in the class)
        return self._hash  # type: ignore[attr-defined,no-any-return]  # set in __post_init__

    @property
    def user(self) -> str:
        return self.preferred_username or self.sub

    def claim(self, path: str) -> tuple[str, ...]:
        """The values read at ``path`` (a configured extra claim path; ``()`` if none or not read)."""
        for name, values in self.claims:
            if name == path:
                return values
        return ()

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        groups: Sequence[str] | None = None,
        roles: Sequence[str] = (),
        extra: Sequence[tuple[str, tuple[str, ...]]] = (),
    ) -> Identity:
        """The identity in ``claims``; ``groups``/``roles`` as read along the configured claim paths
        (``proxy.claims``), else the ``groups`` claim and no roles."""
        if groups is None:
            found = claims.get("groups") or ()
            if isinstance(found, str):
                found = (found,)
            elif not isinstance(found, (list, tuple)):
                found = ()
            groups = [str(g) for g in found if isinstance(g, (str, int))]
        return cls(
            sub=str(claims["sub"]),
            email=_str_or_none(claims.get("email")),
            preferred_username=_str_or_none(claims.get("preferred_username")),
            name=_str_or_none(claims.get("name")),
            groups=tuple(groups),
            roles=tuple(roles),
            email_verified=_bool_or_none(claims.get("email_verified")),
            claims=tuple(extra),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "email": self.email,
            "preferred_username": self.preferred_username,
            "name": self.name,
            "groups": list(self.groups),
            "roles": list(self.roles),
        }


def _bool_or_none(value: Any) -> bool | None:
    """``email_verified`` as a boolean; some providers (Cognito) send the strings "true"/"false"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class Principal(NamedTuple):
    """Who asks (a named tuple: built for every request, and a frozen dataclass costs ~1 us more)."""

    identity: Identity
    access_token: str
    via: Literal["session", "bearer"]
    id_token: str | None = None
    """The session's ID token (``None`` for a bearer token): for ``headers.inject`` source ``id_token``."""
    provider: str | None = None
    """The id of the provider that vouches for them."""
    acr: str | None = None
    """How strongly they signed in (the ID token's, or the bearer token's, ``acr``)."""
    acr_requested: str | None = None
    """The ``acr_values`` the session's sign-in asked for (a step-up), ``None`` for none."""

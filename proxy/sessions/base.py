"""What a session is: the identity, the tokens, the clock; and the ticket that names it.

The browser holds only a :class:`Ticket` (a random id and a per-session secret). The session itself
lives in the store, encrypted under a key derived from the ticket's secret, so the store alone
reveals no token.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SESSION_FORMAT = 1
"""Version of the serialised form; readers accept every version they know (rolling upgrades)."""


@dataclass(frozen=True)
class Ticket:
    """The opaque handle in the cookie: ``id`` names the session, ``secret`` decrypts it."""

    id: bytes
    secret: bytes

    ID_BYTES = 16
    SECRET_BYTES = 32

    @classmethod
    def new(cls) -> Ticket:
        return cls(secrets.token_bytes(cls.ID_BYTES), secrets.token_bytes(cls.SECRET_BYTES))

    @property
    def key(self) -> str:
        return session_key(self.id.hex())


def session_key(session_id_hex: str) -> str:
    """The store key of a session (the ``{...}`` hash tag keeps its keys in one Cluster slot)."""
    return f"ap:s:{{{session_id_hex}}}"


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

    def __post_init__(self) -> None:
        # Stored sessions come back from JSON with lists: keep them tuples (hashable, comparable).
        for name in ("groups", "roles"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)):
                raise TypeError(f"Identity.{name} must be a sequence of names, not a string")
            object.__setattr__(self, name, tuple(value))
        # Identities key the per-user memos (headers, rule verdicts) of every request: hash once.
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, f.name) for f in fields(self))))

    def __hash__(self) -> int:  # the dataclass's own, computed once (kept: defined in the class)
        return self._hash  # type: ignore[attr-defined,no-any-return]  # set in __post_init__

    @property
    def user(self) -> str:
        return self.preferred_username or self.sub

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        groups: Sequence[str] | None = None,
        roles: Sequence[str] = (),
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


def scoped(provider: str | None, value: str) -> str:
    """A provider's ``sub`` or ``sid`` as the store indexes it, so that two providers' users or
    sessions with the same id never meet: as is for the default provider (the single ``provider:``,
    and sessions from before several providers), else ``<provider id> NUL <value>``. Sign-in refuses
    a ``sub`` or ``sid`` with a NUL, so no value of one provider can spell another's."""
    if provider is None or provider == "default":
        return value
    return f"{provider}\x00{value}"


@dataclass(frozen=True)
class Session:
    identity: Identity
    id_token: str
    access_token: str
    refresh_token: str | None
    sid: str | None
    """The provider's session id (``sid`` claim), for back-channel logout."""
    created_at: float
    expires_at: float
    """Absolute end of this session (epoch seconds)."""
    access_expires_at: float | None = None
    refresh_expires_at: float | None = None
    """When the refresh token stops working (a session never outlives it)."""
    provider: str | None = None
    """The id of the provider it was signed in with (``None``: from before several providers, the
    first configured). Its refreshes, sign-out and logout tokens go to and come from that one."""
    acr: str | None = None
    """The ID token's ``acr`` (how strongly the user signed in), for upstreams' ``acr`` step-up."""
    acr_requested: str | None = None
    """The ``acr_values`` its sign-in asked for (a step-up): if the provider still answered a weaker
    ``acr``, the proxy refuses (403) instead of sending the browser round again."""
    version: int = field(default=SESSION_FORMAT)

    @property
    def user_key(self) -> str:
        """The user as the store indexes them: ``sub`` scoped by the provider (:func:`scoped`)."""
        return scoped(self.provider, self.identity.sub)

    def ends_at(self) -> float:
        """The absolute end: the configured lifetime, or the refresh token's expiry if sooner."""
        if self.refresh_expires_at is not None:
            return min(self.expires_at, self.refresh_expires_at)
        return self.expires_at

    def ttl(self, now: float, idle_timeout: float | None = None) -> int:
        """Seconds the store should keep it: what remains, capped by the idle timeout; at least one."""
        remaining = self.ends_at() - now
        if idle_timeout is not None:
            remaining = min(remaining, idle_timeout)
        return max(1, int(remaining + 0.999))

    def needs_refresh(self, now: float, skew: float) -> bool:
        return self.access_expires_at is not None and self.access_expires_at - now <= skew

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data["identity"]["groups"] = list(self.identity.groups)
        data["version"] = SESSION_FORMAT
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Session:
        """Parse a stored session; raise ``ValueError`` for anything this version can't read.

        Rolling upgrades: a change that only adds fields keeps ``SESSION_FORMAT``; readers ignore
        fields they don't know and default the ones they miss, so old and new replicas read each
        other's sessions. Only an incompatible change bumps the format, which older readers refuse.
        """
        try:
            data = json.loads(raw)
            version = data.pop("version", 1)
            if (
                not isinstance(version, int)
                or isinstance(version, bool)
                or not 1 <= version <= SESSION_FORMAT
            ):
                raise ValueError(f"unknown session format {version}")
            ident = {k: v for k, v in data.pop("identity").items() if k in _IDENTITY_FIELDS}
            ident["groups"] = tuple(ident.get("groups", ()))
            known = {k: v for k, v in data.items() if k in _SESSION_FIELDS}
            return cls(identity=Identity(**ident), **known)
        except (KeyError, TypeError, AttributeError, RecursionError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed session: {type(exc).__name__}") from None


_IDENTITY_FIELDS = frozenset(f.name for f in fields(Identity))
_SESSION_FIELDS = frozenset(f.name for f in fields(Session)) - {"identity", "version"}

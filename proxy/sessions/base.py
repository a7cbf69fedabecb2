"""What a session is: the identity (``proxy.identity``), the tokens, the clock; and the ticket
that names it.

The browser holds only a :class:`Ticket` (a random id and a per-session secret). The session itself
lives in the store, encrypted under a key derived from the ticket's secret, so the store alone
reveals no token.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, fields

from ..identity import Identity

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

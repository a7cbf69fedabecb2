"""What a session is: the identity, the tokens, the clock; and the ticket that names it.

The browser holds only a :class:`Ticket` (a random id and a per-session secret). The session itself
lives in the store, encrypted under a key derived from the ticket's secret, so the store alone
reveals no token.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
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

    @property
    def user(self) -> str:
        return self.preferred_username or self.sub

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Identity:
        groups = claims.get("groups") or ()
        if isinstance(groups, str):
            groups = (groups,)
        elif not isinstance(groups, (list, tuple)):
            groups = ()
        return cls(
            sub=str(claims["sub"]),
            email=_str_or_none(claims.get("email")),
            preferred_username=_str_or_none(claims.get("preferred_username")),
            name=_str_or_none(claims.get("name")),
            groups=tuple(str(g) for g in groups if isinstance(g, (str, int))),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "email": self.email,
            "preferred_username": self.preferred_username,
            "name": self.name,
            "groups": list(self.groups),
        }


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
    version: int = field(default=SESSION_FORMAT)

    def ttl(self, now: float) -> int:
        """Seconds the store should keep it: the remaining lifetime, at least one."""
        return max(1, int(self.expires_at - now + 0.999))

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data["identity"]["groups"] = list(self.identity.groups)
        data["version"] = SESSION_FORMAT
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Session:
        """Parse a stored session; raise ``ValueError`` for anything this version can't read."""
        try:
            data = json.loads(raw)
            version = data.pop("version", 1)
            if version != SESSION_FORMAT:
                raise ValueError(f"unknown session format {version}")
            ident = data.pop("identity")
            ident["groups"] = tuple(ident.get("groups", ()))
            return cls(identity=Identity(**ident), **data)
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed session: {type(exc).__name__}") from None


@dataclass(frozen=True)
class LoginState:
    """What /start remembers for /callback, under the ``state`` value, for a few minutes."""

    nonce: str
    code_verifier: str
    redirect_uri: str
    return_to: str
    browser_binding: str
    """SHA-256 of the value in the browser's login cookie, which the callback must present."""

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> LoginState:
        try:
            return cls(**json.loads(raw))
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed login state: {type(exc).__name__}") from None

"""What the proxy may know of a session without its ticket: when and where it was signed in, and
the refresh token that lets the proxy end that session at the provider ("sign out everywhere").

Sealed with a key derived from ``cookie.secret`` (AES-GCM, the session id as associated data): a
Redis dump alone still reveals no token; with the cookie secret as well, it reveals these refresh
tokens, which is what ending other devices' provider sessions takes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from .crypto import open_with, seal_with


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    """Hex id of the session (its store key is derived from it)."""
    created_at: float
    user_agent: str
    ip: str
    refresh_token: str | None
    id_token_hint: str | None = None
    """Only when small enough to keep (the POST end-session needs it for providers without
    refresh-token logout); big ID tokens are left out."""
    provider: str | None = None
    """The session's provider id (``Session.provider``): where to end it."""

    @property
    def ref(self) -> str:
        """A public handle for the session (the sessions page); not the id itself."""
        return public_ref(self.session_id)

    def seal(self, keys: list[bytes]) -> bytes:
        return seal_with(keys[0], self.session_id.encode(), json.dumps(asdict(self)).encode())

    @classmethod
    def open(cls, keys: list[bytes], session_id: str, blob: bytes) -> SessionRecord | None:
        plain = open_with(keys, session_id.encode(), blob)
        if plain is None:
            return None
        try:
            data = json.loads(plain)
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        except (TypeError, ValueError):
            return None


def public_ref(session_id: str) -> str:
    return hashlib.sha256(("ref:" + session_id).encode()).hexdigest()[:20]


def record_key(session_id: str) -> str:
    return f"ap:r:{{{session_id}}}"


def seen_key(session_id: str) -> str:
    return f"ap:seen:{{{session_id}}}"

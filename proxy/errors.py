"""The proxy's exceptions and the HTTP status each one maps to.

ProxyError
 ├── StoreUnavailable       503  the session store (Redis) did not answer: fail closed
 ├── ProviderUnavailable    503  the OIDC provider did not answer, or answered nonsense
 ├── LoginError             400  a login that cannot finish (bad/replayed state, provider said no)
 └── TokenInvalid           401  a token failed verification (signature, iss, aud, exp, nonce ...)
"""

from __future__ import annotations


class ProxyError(Exception):
    status = 500
    title = "Something went wrong"
    public: str | None = None
    """What a user is told; ``None`` means the message itself is fit to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def user_message(self) -> str:
        return self.public or self.message


class StoreUnavailable(ProxyError):
    status = 503
    title = "Sessions are unavailable"
    public = "Signed-in sessions can't be checked right now. Please try again in a moment."


class ProviderUnavailable(ProxyError):
    status = 503
    title = "The sign-in provider is unavailable"
    public = "The sign-in provider could not be reached. Please try again in a moment."


class LoginError(ProxyError):
    status = 400
    title = "Sign-in did not complete"


class TokenInvalid(ProxyError):
    status = 401
    title = "The token could not be verified"

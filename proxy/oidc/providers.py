"""The configured providers at run time: for each, its settings, client, discovery and JWKS cache
and HTTP client. Each provider's resources are created and closed by a cleanup context of its own
(``proxy.app.provider_ctx``); handlers find a provider by id (a login, a session) or by issuer (a logout
or bearer token, after its signature and ``iss`` were checked against that provider).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from ..config import ProviderConfig
from ..errors import ProviderUnavailable
from .client import Client
from .discovery import Provider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderEntry:
    """One provider: ``discovery`` (metadata, keys), ``client`` (our registration), ``http``."""

    config: ProviderConfig
    client: Client
    discovery: Provider
    http: aiohttp.ClientSession

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def issuer(self) -> str:
        return self.config.issuer_url


def display_name(cfg: ProviderConfig, fallback: str | None = None) -> str:
    """How the pages name ``cfg``: its display_name, else ``fallback``, else its issuer's host."""
    return cfg.display_name or fallback or urlsplit(cfg.issuer_url).hostname or "the sign-in provider"


class Providers:
    """Every configured provider, in configuration order (the first is the default)."""

    def __init__(self, configs: tuple[ProviderConfig, ...]) -> None:
        self.configs = configs
        self._entries: dict[str, ProviderEntry] = {}

    def add(self, entry: ProviderEntry) -> None:
        self._entries[entry.id] = entry

    def remove(self, provider_id: str) -> None:
        self._entries.pop(provider_id, None)

    def __iter__(self) -> Iterator[ProviderEntry]:
        return iter([self._entries[c.id] for c in self.configs if c.id in self._entries])

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def default(self) -> ProviderEntry:
        return self.get(self.configs[0].id)

    def find(self, provider_id: str) -> ProviderEntry | None:
        """The provider with this id, ``None`` if none is configured."""
        return self._entries.get(provider_id)

    def get(self, provider_id: str) -> ProviderEntry:
        """The provider of a session or login (``ProviderUnavailable`` if it is not running)."""
        entry = self._entries.get(provider_id)
        if entry is None:
            raise ProviderUnavailable(f"provider {provider_id!r} is not configured or not started")
        return entry

    def by_issuer(self, issuer: str) -> ProviderEntry | None:
        issuer = issuer.rstrip("/")
        for entry in self._entries.values():
            if entry.issuer == issuer:
                return entry
        return None

    def find_session(self, provider_id: str | None) -> ProviderEntry | None:
        """A stored session's (or login's) provider, ``None`` if it is no longer configured."""
        return self.find(provider_id if provider_id is not None else self.configs[0].id)

    def of_session(self, provider_id: str | None) -> ProviderEntry:
        """A stored session's provider (sessions from before several providers name none)."""
        return self.get(provider_id if provider_id is not None else self.configs[0].id)

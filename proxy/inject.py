"""Claims and tokens to headers (``headers.inject``, ``headers.groups_filter``, per upstream). Pure.

Values come from the identity (groups, roles, and the claim paths the configuration names, read at
sign-in and at each refresh: ``Identity.claims``) or the tokens the request carries. Claims are
partly user-controlled at some providers, so each value is checked: one holding a control character
(CR, LF, NUL ...) or the header's separator (``a,admin`` would read as two groups) is left out, never
cleaned up into something else. The joined value is capped at whole values (then
``<name>-Truncated: true``); a single value over the cap is left out. Client copies of every name
any scope injects (and its ``-Truncated``) are dropped, underscore spellings too
(``proxy.forward_headers``), whether or not a value is sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from .config import Settings
from .config.inject import InjectHeader
from .identity import Identity
from .saferegex import check

MAX_GROUP_NAME = 256
"""A group name longer than this never passes ``groups_filter`` (the regex is not run on it)."""
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _join(values: Sequence[str], prefix: str, separator: str, cap: int | None) -> tuple[str | None, bool]:
    """``prefix`` + the values joined, cut to the whole values that fit ``cap`` bytes; ``None`` when
    none fits (or there are none); and whether any was left out for size."""
    kept: list[str] = []
    size = len(prefix.encode())
    cut = False
    for value in values:
        cost = len(value.encode()) + (len(separator.encode()) if kept else 0)
        if cap is not None and size + cost > cap:
            cut = True
            break
        kept.append(value)
        size += cost
    if not kept:
        return None, cut
    return prefix + separator.join(kept), cut


@dataclass(frozen=True, eq=False)
class Injection:
    """The headers of one scope (global, or one upstream), compiled. Hashed by identity (built once
    at start-up): it keys the per-request memos."""

    specs: tuple[InjectHeader, ...]
    groups_filter: re.Pattern[str] | None
    default_max: int | None

    def filter_groups(self, identity: Identity) -> Identity:
        """``identity`` with only the groups ``groups_filter`` lets through (for headers only)."""
        if self.groups_filter is None:
            return identity
        return _filtered(self.groups_filter, identity)

    def headers(
        self, identity: Identity, access_token: str | None, id_token: str | None, auth: bool = False
    ) -> Mapping[str, str]:
        """The injected headers (``X-Auth-Request-*`` names when ``auth``). Memoised per identity and
        tokens: the same user's headers go out with each of their requests."""
        return _headers(self, identity, access_token, id_token, auth)


def _values(spec: InjectHeader, identity: Identity, access: str | None, id_token: str | None) -> list[str]:
    if spec.source == "groups":
        found: Sequence[str] = identity.groups
    elif spec.source == "roles":
        found = identity.roles
    elif spec.source == "access_token":
        found = (access,) if access else ()
    elif spec.source == "id_token":
        found = (id_token,) if id_token else ()
    else:
        assert spec.claim is not None
        found = identity.claim(spec.claim)
    return [v for v in found if v and spec.separator not in v and not _CONTROL.search(v)]


@functools.lru_cache(maxsize=8192)
def _headers(
    scope: Injection, identity: Identity, access: str | None, id_token: str | None, auth: bool
) -> Mapping[str, str]:
    out: dict[str, str] = {}
    identity = scope.filter_groups(identity)
    for spec in scope.specs:
        name = spec.auth_name if auth else spec.name
        cap = spec.max_bytes if spec.max_bytes is not None else scope.default_max
        value, cut = _join(_values(spec, identity, access, id_token), spec.prefix, spec.separator, cap)
        if value is not None:
            out[name] = value
        if cut:
            out[f"{name}-Truncated"] = "true"
    return MappingProxyType(out)


@functools.lru_cache(maxsize=8192)
def _filtered(pattern: re.Pattern[str], identity: Identity) -> Identity:
    kept = tuple(g for g in identity.groups if len(g) <= MAX_GROUP_NAME and pattern.match(g))
    return identity if kept == identity.groups else replace(identity, groups=kept)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return None if pattern is None or pattern == "" else check(pattern)


@dataclass(frozen=True)
class Injections:
    """Every scope: the global one (``/oauth/auth``, paths no upstream claims) and each upstream's."""

    everywhere: Injection
    by_prefix: Mapping[str, Injection]
    strip: frozenset[str]
    """Lower-case names (``-`` for ``_``) a client must never send upstream."""

    @classmethod
    def of(cls, settings: Settings) -> Injections:
        h = settings.headers
        everywhere = Injection(tuple(h.inject), _compile(h.groups_filter), h.max_groups_bytes)
        by_prefix: dict[str, Injection] = {}
        for u in settings.upstreams:
            own = u.headers
            specs = tuple(own.inject) if own.inject is not None else everywhere.specs
            pattern = (
                _compile(own.groups_filter) if own.groups_filter is not None else everywhere.groups_filter
            )
            by_prefix[u.prefix] = Injection(specs, pattern, h.max_groups_bytes)
        names = {s.name.lower() for scope in (everywhere, *by_prefix.values()) for s in scope.specs}
        strip = frozenset(n for name in names for n in (name, name + "-truncated"))
        return cls(everywhere, by_prefix, strip)

    def for_prefix(self, prefix: str | None) -> Injection:
        return self.by_prefix.get(prefix, self.everywhere) if prefix is not None else self.everywhere

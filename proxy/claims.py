"""Groups and roles out of token claims, along configurable claim paths. Pure.

A path names a claim, or a value nested in claims, with dots: ``realm_access.roles``. A ``*``
segment stands for every key of an object, and that key becomes the prefix of the values below it:
``resource_access.*.roles`` reads Keycloak's client roles as ``client:role`` (``proxy:editor``).
Claim names that contain dots themselves (Auth0's ``https://example.com/roles``) work too: at each
level the longest name that exists wins. Strings and lists of strings are read; anything else is
ignored, so a provider's odd claim can't break a login.

    Keycloak   roles_claims: [realm_access.roles, "resource_access.*.roles"]   groups_claim: groups
    Entra ID   roles_claims: [roles]                                            groups_claim: groups
    Cognito    roles_claims: ["cognito:roles"]                         groups_claim: "cognito:groups"
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

DEFAULT_ROLES_CLAIMS = ("realm_access.roles", "resource_access.*.roles")
DEFAULT_GROUPS_CLAIM = "groups"


def check_path(path: str) -> str:
    """``ValueError`` unless ``path`` is a usable claim path."""
    segments = path.split(".")
    if not path or any(not s for s in segments):
        raise ValueError(f"{path!r} is not a claim path such as 'groups' or 'realm_access.roles'")
    if segments.count("*") > 1:
        raise ValueError(f"{path!r}: only one '*' segment is allowed")
    if segments[-1] == "*":
        raise ValueError(f"{path!r}: a '*' segment must be followed by the key that holds the values")
    return path


def _strings(node: Any, prefix: str) -> Iterator[str]:
    if isinstance(node, str):
        node = (node,)
    if not isinstance(node, (list, tuple)):
        return
    for item in node:
        if isinstance(item, bool):
            continue
        if isinstance(item, (str, int)) and str(item):
            yield prefix + str(item)


def _walk(node: Any, segments: tuple[str, ...], prefix: str) -> Iterator[str]:
    if not segments:
        yield from _strings(node, prefix)
        return
    if not isinstance(node, Mapping):
        return
    if segments[0] == "*":
        for key, child in node.items():
            yield from _walk(child, segments[1:], f"{prefix}{key}:")
        return
    for i in range(len(segments), 0, -1):
        if "*" in segments[:i]:
            continue  # a literal claim name never spans a wildcard
        name = ".".join(segments[:i])
        if name in node:
            yield from _walk(node[name], segments[i:], prefix)
            return


def values_at(claims: Mapping[str, Any], path: str) -> list[str]:
    """The strings found at ``path`` in ``claims`` (see the module docstring)."""
    return list(_walk(claims, tuple(path.split(".")), ""))


def collect(sources: Iterable[Mapping[str, Any]], paths: Sequence[str]) -> tuple[str, ...]:
    """Every value at every path in every source, first occurrence first, without duplicates."""
    seen: dict[str, None] = {}
    for claims in sources:
        for path in paths:
            for value in values_at(claims, path):
                seen.setdefault(value, None)
    return tuple(seen)

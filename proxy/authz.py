"""Pure authorisation decisions: an identity against allow-lists. No I/O, no request objects.

A :class:`Rules` holds the four allow-lists. Each non-empty list must be satisfied (they combine
with AND); within a list one match is enough (OR); empty lists allow everyone. Where several rule
sets apply (global + ``/oauth/auth``'s query narrowing, or the rules of every upstream an ambiguous
path could mean), the identity must pass all of them.

Per upstream, each ``allowed_*`` key that is set replaces the same global key for that prefix (an
empty list lifts it); keys left out inherit the global value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .identity import Identity

if TYPE_CHECKING:
    from .config import AuthorizationConfig, UpstreamConfig
    from .paths import SkipRoute


def _set(values: Iterable[str], lower: bool = False) -> frozenset[str]:
    items = (v.strip() for v in values)
    return frozenset(v.lower() if lower else v for v in items if v)


@dataclass(frozen=True)
class Rules:
    """Empty lists allow everyone; each non-empty list must be satisfied (they combine with AND)."""

    groups: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    email_domains: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    """Realm roles as ``role``, client roles as ``client:role`` (as ``Identity.roles`` holds them)."""

    @classmethod
    def of(
        cls,
        *,
        groups: Iterable[str] = (),
        emails: Iterable[str] = (),
        email_domains: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> Rules:
        """From lists as configured (emails and domains compare case-insensitively)."""
        domains = (d.strip().removeprefix("@") for d in email_domains)
        return cls(_set(groups), _set(emails, lower=True), _set(domains, lower=True), _set(roles))

    @classmethod
    def parse(cls, groups: str = "", emails: str = "", email_domains: str = "", roles: str = "") -> Rules:
        """From comma-separated query parameters (``allowed_groups=a,b``). Memoised: each location of
        a front proxy sends the same few strings with every request."""
        return _parsed(groups, emails, email_domains, roles)

    @classmethod
    def _parse(cls, groups: str, emails: str, email_domains: str, roles: str) -> Rules:
        return cls.of(
            groups=groups.split(","),
            emails=emails.split(","),
            email_domains=email_domains.split(","),
            roles=roles.split(","),
        )

    def __bool__(self) -> bool:
        return bool(self.groups or self.emails or self.email_domains or self.roles)


@functools.lru_cache(maxsize=512)
def _parsed(groups: str, emails: str, email_domains: str, roles: str) -> Rules:
    return Rules._parse(groups, emails, email_domains, roles)


def global_rules(cfg: AuthorizationConfig) -> Rules:
    return Rules.of(
        groups=cfg.allowed_groups,
        emails=cfg.allowed_emails,
        email_domains=cfg.allowed_email_domains,
        roles=cfg.allowed_roles,
    )


def upstream_rules(cfg: AuthorizationConfig, upstream: UpstreamConfig | None) -> Rules:
    """The rules of a prefix: the global ones, each key replaced where the upstream sets it."""
    rules = global_rules(cfg)
    if upstream is None:
        return rules
    own = Rules.of(
        groups=upstream.allowed_groups or (),
        emails=upstream.allowed_emails or (),
        email_domains=upstream.allowed_email_domains or (),
        roles=upstream.allowed_roles or (),
    )
    changes = {
        name: getattr(own, name)
        for name, value in (
            ("groups", upstream.allowed_groups),
            ("emails", upstream.allowed_emails),
            ("email_domains", upstream.allowed_email_domains),
            ("roles", upstream.allowed_roles),
        )
        if value is not None
    }
    return replace(rules, **changes)


@dataclass(frozen=True)
class RuleBook:
    """Every rule set of the configuration, built once at start-up (not per request)."""

    everywhere: Rules
    """The global rules (``/oauth/auth`` and paths no upstream claims)."""
    by_prefix: Mapping[str, Rules]
    public: tuple[SkipRoute, ...] = ()
    """``skip_auth_routes``, compiled (read per request: a plain attribute, not pydantic's)."""
    public_preflight: bool = False
    """``skip_auth_preflight``."""

    @classmethod
    def of(cls, cfg: AuthorizationConfig, upstreams: Sequence[UpstreamConfig]) -> RuleBook:
        return cls(
            global_rules(cfg),
            {u.prefix: upstream_rules(cfg, u) for u in upstreams},
            cfg.skip_routes,
            cfg.skip_auth_preflight,
        )

    @property
    def has_public_routes(self) -> bool:
        return bool(self.public) or self.public_preflight

    def for_prefix(self, prefix: str) -> Rules:
        return self.by_prefix.get(prefix, self.everywhere)


def _domain_of(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].lower()


def denied_by(rules: Rules, identity: Identity) -> str | None:
    """The name of the first rule ``identity`` fails (``"allowed_groups"`` ...), ``None`` if it passes.

    Email rules only see an address the provider has not called unverified (``email_verified``
    false): an unverified address proves nothing about who signed in.
    """
    if rules.groups and not rules.groups.intersection(identity.groups):
        return "allowed_groups"
    if rules.roles and not rules.roles.intersection(identity.roles):
        return "allowed_roles"
    email = (identity.email or "").lower() if identity.email_verified is not False else ""
    if rules.emails and email not in rules.emails:
        return "allowed_emails"
    if rules.email_domains and _domain_of(email) not in rules.email_domains:
        return "allowed_email_domains"
    return None


def first_denial(all_rules: Iterable[Rules], identity: Identity) -> str | None:
    """:func:`denied_by` over several rule sets that must all pass."""
    for rules in all_rules:
        failed = denied_by(rules, identity)
        if failed is not None:
            return failed
    return None


def allows(rules: Rules, identity: Identity) -> bool:
    return denied_by(rules, identity) is None

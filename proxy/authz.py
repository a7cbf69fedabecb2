"""Pure authorisation decisions: an identity against allow-lists. No I/O, no request objects."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .sessions.base import Identity


@dataclass(frozen=True)
class Rules:
    """Empty lists allow everyone; each non-empty list must be satisfied (they combine with AND)."""

    groups: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    email_domains: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, groups: str = "", emails: str = "", email_domains: str = "") -> Rules:
        """From comma-separated query parameters (``allowed_groups=a,b``)."""

        def split(value: str, lower: bool = False) -> frozenset[str]:
            items = (v.strip() for v in value.split(","))
            return frozenset(v.lower() if lower else v for v in items if v)

        return cls(split(groups), split(emails, lower=True), split(email_domains, lower=True))

    def __bool__(self) -> bool:
        return bool(self.groups or self.emails or self.email_domains)


def _domain_of(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].lower()


def allows(rules: Rules, identity: Identity, groups: Collection[str] | None = None) -> bool:
    """Whether ``identity`` passes ``rules``. ``groups`` overrides the identity's own (e.g. roles)."""
    member_of = set(identity.groups if groups is None else groups)
    if rules.groups and not rules.groups & member_of:
        return False
    email = (identity.email or "").lower()
    if rules.emails and email not in rules.emails:
        return False
    if rules.email_domains and _domain_of(email) not in rules.email_domains:
        return False
    return True

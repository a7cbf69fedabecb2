"""``authorization.rules``: per-route rules with methods and any claim (compiled by proxy/rules.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from ..claims import check_path
from ..paths import METHODS
from ..saferegex import check
from .fields import Domains, Emails, Names, _Section


def _path(value: str) -> str:
    if value.startswith("^"):
        check(value)  # UnsafeRegex / ValueError name the construct
    elif not value.startswith("/"):
        raise ValueError(f"must be a path prefix ('/admin') or a regex starting with '^', got {value!r}")
    elif "\\" in value or "%" in value or ";" in value or "//" in value or "/./" in value or "/../" in value:
        raise ValueError(f"a prefix is compared with the canonical path: write it plainly, got {value!r}")
    return value


def _methods(values: list[str]) -> list[str]:
    out = [v.strip().upper() for v in values]
    bad = [v for v in out if v not in METHODS]
    if bad:
        raise ValueError(f"unknown method {bad[0]!r} (one of {', '.join(sorted(METHODS))})")
    return out


def _claims(values: dict[str, list[str]]) -> dict[str, list[str]]:
    for path, wanted in values.items():
        check_path(path)
        if not wanted or any(not str(w).strip() for w in wanted):
            raise ValueError(f"claims[{path!r}]: list at least one non-empty value")
    return values


class RuleConfig(_Section):
    """One rule: where it applies (``path``, ``methods``), then who may pass (or ``deny``)."""

    path: Annotated[str, AfterValidator(_path)] = "/"
    """A prefix (``/admin``: /admin and below; ``/admin/``: below only), or a regex starting with
    ``^`` matched from the start of the canonical path (``re.match``; bounded, see proxy/saferegex.py)."""
    methods: Annotated[list[str], AfterValidator(_methods)] = []
    """Empty: every method. GET covers HEAD too."""
    allowed_email_domains: Domains = []
    allowed_emails: Emails = []
    allowed_groups: Names = []
    allowed_roles: Names = []
    claims: Annotated[dict[str, list[str]], AfterValidator(_claims)] = {}
    """``{claim path: [values]}``: the claim (same path syntax as roles_claims) must hold one of them."""
    require: Literal["all", "any"] = "all"
    """all: every condition set here must hold; any: one is enough."""
    deny: bool = False
    """Refuse every request the rule matches (403), whoever asks."""
    name: str | None = Field(default=None, max_length=64)
    """Shown in logs and in ``--check-config``'s table."""

    @field_validator("claims", mode="before")
    @classmethod
    def _claim_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _sense(self) -> RuleConfig:
        conditions = (self.allowed_email_domains, self.allowed_emails, self.allowed_groups,
                      self.allowed_roles, self.claims)  # fmt: skip
        if self.deny and any(conditions):
            raise ValueError("deny: true takes no allowed_* or claims (it refuses everyone)")
        return self

    def claim_paths(self) -> tuple[str, ...]:
        return tuple(self.claims)

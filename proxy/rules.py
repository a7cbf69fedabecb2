"""``authorization.rules``: per-route rules with methods and any claim, compiled once. Pure.

Each rule says where it applies (``path``: a prefix, or a regex from the start; ``methods``) and who
may pass there (the ``allowed_*`` lists, ``claims``, combined by ``require: all|any``), or refuses
everyone (``deny``). For a request the first rule whose path and method match decides; no match:
only the global and upstream allow-lists apply. A rule comes on top of those lists: it can narrow
or deny, never lift them.

Fail closed, where the proxy and the upstream could read the request differently:

- **Path**: rules are matched on the canonical path, and on every other reading of it
  (``proxy.paths.readings``: nginx, servlet containers, ...) when those differ; every reading's first
  rule must let the request through. ``/admin;x``, ``/public/..;/admin``, ``/%61dmin`` meet
  ``/admin``'s rule. A regex rule never runs on more than :data:`MAX_SUBJECT` characters: a longer
  path that reaches one is refused.
- **Method**: ``HEAD`` meets the rules of ``GET`` as well (frameworks answer HEAD with the GET
  handler). A method override the upstream may honour (``X-HTTP-Method-Override``, ``X-HTTP-Method``,
  ``X-Method-Override``, a ``_method`` query parameter) is checked too, every one of them; an
  unknown method there (or, at ``/oauth/auth``, an unknown original method or URI) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .authz import Rules, denied_by
from .config.rules import RuleConfig
from .identity import Identity
from .paths import METHODS, canonical_path, fold_case, is_plain, readings
from .saferegex import bounded_match, check

MAX_SUBJECT = 2048
"""Longest canonical path a regex rule is run on (see proxy/saferegex.py for the bound)."""
OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")


@dataclass(frozen=True, slots=True)
class Denial:
    index: int
    """The rule's place in ``authorization.rules``; -1: the request itself was unknown."""
    name: str | None
    reason: str

    @property
    def key(self) -> str:
        return f"authorization.rules[{self.index}]"


@dataclass(frozen=True)
class Rule:
    index: int
    name: str | None
    prefix: str | None
    regex: re.Pattern[str] | None
    methods: frozenset[str]
    conditions: tuple[tuple[str, Rules | tuple[str, frozenset[str]]], ...]
    require_any: bool
    deny: bool

    @classmethod
    def of(cls, index: int, cfg: RuleConfig) -> Rule:
        conditions: list[tuple[str, Rules | tuple[str, frozenset[str]]]] = []
        for key in ("allowed_groups", "allowed_roles", "allowed_emails", "allowed_email_domains"):
            values = getattr(cfg, key)
            if values:
                conditions.append((key, Rules.of(**{key.removeprefix("allowed_"): values})))
        for path, wanted in cfg.claims.items():
            conditions.append((f"claims.{path}", (path, frozenset(str(w).strip() for w in wanted))))
        methods = set(cfg.methods)
        if "GET" in methods:
            methods.add("HEAD")
        regex = check(cfg.path) if cfg.path.startswith("^") else None
        prefix = None if regex is not None else cfg.path
        return cls(index, cfg.name, prefix, regex, frozenset(methods), tuple(conditions),
                   cfg.require == "any", cfg.deny)  # fmt: skip

    def covers(self, method: str, path: str, fold: bool) -> bool | None:
        """Whether the rule applies to ``method`` on ``path`` (canonical); ``None``: a regex rule and
        a path too long to run it on."""
        if self.methods and method not in self.methods:
            return False
        if self.regex is not None:
            return bounded_match(self.regex, fold_case(path) if fold else path, MAX_SUBJECT)
        assert self.prefix is not None
        prefix = fold_case(self.prefix) if fold else self.prefix
        path = fold_case(path) if fold else path
        if prefix.endswith("/"):
            return path.startswith(prefix)
        return path == prefix or path.startswith(prefix + "/")

    def failed(self, identity: Identity) -> str | None:
        """Why ``identity`` may not pass under this rule, ``None`` when it may."""
        if self.deny:
            return "deny"
        if not self.conditions:
            return None
        missed = [key for key, test in self.conditions if not _check(test, identity)]
        if not missed or (self.require_any and len(missed) < len(self.conditions)):
            return None
        return missed[0] if not self.require_any else "none of " + ", ".join(missed)

    def describe(self) -> str:
        where = f"regex {self.regex.pattern}" if self.regex is not None else f"prefix {self.prefix}"
        methods = ",".join(sorted(self.methods)) if self.methods else "*"
        if self.deny:
            who = "deny"
        elif not self.conditions:
            who = "any signed-in user"
        else:
            joined = (" or " if self.require_any else " and ").join(_describe(c) for c in self.conditions)
            who = f"allow if {joined}"
        label = f" ({self.name})" if self.name else ""
        return f"[{self.index}]{label} {methods} {where}: {who}"


def _check(test: Rules | tuple[str, frozenset[str]], identity: Identity) -> bool:
    if isinstance(test, Rules):
        return denied_by(test, identity) is None
    path, wanted = test
    return not wanted.isdisjoint(identity.claim(path))


def _describe(cond: tuple[str, Rules | tuple[str, frozenset[str]]]) -> str:
    key, test = cond
    if isinstance(test, Rules):
        values = sorted(test.groups | test.roles | test.emails | test.email_domains)
    else:
        values = sorted(test[1])
    return f"{key} in [{', '.join(values)}]"


class RuleTable:
    """The rules in order, compiled; :meth:`decide` for a request."""

    def __init__(self, rules: Sequence[RuleConfig]) -> None:
        self.rules = tuple(Rule.of(i, r) for i, r in enumerate(rules))
        self.uses_methods = any(r.methods for r in self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def first(self, method: str, path: str, fold: bool = False) -> Rule | Denial | None:
        for rule in self.rules:
            covered = rule.covers(method, path, fold)
            if covered is None:
                return Denial(rule.index, rule.name, f"path over {MAX_SUBJECT} characters for a regex rule")
            if covered:
                return rule
        return None

    def decide(
        self, identity: Identity, methods: Iterable[str] | None, raw_path: str | None, fold: bool = False
    ) -> Denial | None:
        """The denial of the first rule that refuses, for any of ``methods`` (``None``: unknown)
        on any reading of ``raw_path`` (``None``: unknown); ``None`` when every one lets it pass."""
        if not self.rules:
            return None
        if methods is None or raw_path is None:
            return Denial(-1, None, "the original method or URI is unknown")
        path = raw_path.partition("?")[0]
        views = {path} if is_plain(path) else {canonical_path(path), *readings(path)}
        for method in methods:
            for view in views:
                found = self.first(method, view, fold)
                if isinstance(found, Denial):
                    return found
                if found is not None:
                    reason = found.failed(identity)
                    if reason is not None:
                        return Denial(found.index, found.name, reason)
        return None

    def describe(self) -> list[str]:
        if not self.rules:
            return ["authorization.rules: none (only the allowed_* lists apply)"]
        lines = ["authorization.rules (first match wins; no match: only the allowed_* lists apply):"]
        return lines + ["  " + r.describe() for r in self.rules]


def effective_methods(method: str | None, headers: Mapping[str, str], query: str) -> tuple[str, ...] | None:
    """The method and every override the upstream might honour; ``None`` if one is not a known
    method (or ``method`` is ``None``)."""
    if method is None or method.upper() not in METHODS:
        return None
    found = [method.upper()]
    getall = getattr(headers, "getall", None)
    for name in OVERRIDE_HEADERS:
        values = getall(name, ()) if getall is not None else ([headers[name]] if name in headers else [])
        for value in values:
            found.extend(v.strip().upper() for v in value.split(","))
    if "_method" in query:
        found.extend(v.strip().upper() for k, v in parse_qsl(query, keep_blank_values=True) if k == "_method")
    if any(m not in METHODS for m in found):
        return None
    return tuple(dict.fromkeys(found))

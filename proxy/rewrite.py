"""``upstreams[].rewrite``: a regex substitution on the canonical path, after authorization. Pure.

The pattern is searched in the canonical path (``proxy.paths.canonical_path``: decoded, ``;params``
dropped, dot segments resolved: the path the rules were judged on) and the first match replaced, as
``re.sub(..., count=1)`` does (``\\1``, ``\\g<name>`` in the replacement). No match: the path goes on
unchanged. The result is the whole path the upstream receives (percent-encoded again), so it must
itself be a plain origin-form path: starting with one ``/``, no ``//``, dot segment, ``\\``, control
character, ``?`` or ``#``; anything else is refused (:class:`RewriteRefused`, answered 400).

Regexes are checked at start-up so that no request can make one backtrack for long (ReDoS):

- no quantifier over something that itself holds a quantifier or an alternation (``(a+)+``,
  ``(a|ab)*``, ``(?:x*y)*``): the exponential cases (an optional group, ``(/.*)?``, repeats nothing
  and is allowed);
- no backreference, lookaround or conditional (``\\1``, ``(?=``, ``(?(1)``): backtracking without a
  bound that a parse tree can see;
- at most two unbounded quantifiers (``*``, ``+``, ``{n,}``, or ``{n,m}`` with m > 256): two
  overlapping ones make a failing search quadratic, three cubic;
- and the path searched is at most :data:`MAX_PATH` characters (longer: 414).

With these, the worst search is quadratic in a path of 2,048 characters: ~50 ms, not minutes
(tests/security/test_rewrite.py times the worst patterns).

The parse tree comes from ``re._parser``, the standard library's own regex parser (the module ``re``
compiles with; public as ``sre_parse`` until Python 3.11 deprecated that name): the checks see
exactly what ``re`` will run.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

sre_parse: Any = importlib.import_module("re._parser")  # typeshed knows it only as sre_parse
C: Any = importlib.import_module("re._constants")

MAX_PATH = 2048
"""Longest canonical path a rewrite searches (characters)."""
MAX_UNBOUNDED = 2
"""Unbounded quantifiers allowed in one pattern."""
MAX_PATTERN = 512
"""Longest pattern (characters)."""
_BIG_REPEAT = 256
_REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT}
_REFUSED = {
    C.GROUPREF: "a backreference",
    C.GROUPREF_EXISTS: "a conditional group",
    C.ASSERT: "a lookahead/lookbehind",
    C.ASSERT_NOT: "a lookahead/lookbehind",
}
_SAFE_PATH_CHARS = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar minus what must stay escaped


class RewriteRefused(ValueError):
    """The rewritten path is not a plain origin-form path, or the path is too long to search."""

    def __init__(self, why: str, status: int = 400) -> None:
        super().__init__(why)
        self.why, self.status = why, status


def _items(value: Any) -> list[Any]:
    """The sub-patterns in one parse-tree node's argument (a group's, a branch's, a repeat's)."""
    if isinstance(value, sre_parse.SubPattern):
        return [value]
    if isinstance(value, (list, tuple)):
        return [sub for v in value for sub in _items(v)]
    return []


def _walk(tree: Any) -> list[tuple[Any, Any]]:
    """Every (op, argument) of a parse tree, depth first."""
    out = []
    for op, arg in tree:
        out.append((op, arg))
        for sub in _items(arg):
            out.extend(_walk(sub))
    return out


def _holds_choice(tree: Any) -> str | None:
    """What under a quantifier makes it exponential: another quantifier, an alternation."""
    for op, _arg in _walk(tree):
        if op in _REPEATS:
            return "a quantifier inside a quantified group"
        if op is C.BRANCH:
            return "an alternation inside a quantified group"
    return None


def check_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern, or ``ValueError`` saying what makes it unsafe or invalid."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"pattern is longer than {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
    unbounded = 0
    for op, arg in _walk(tree):
        if op in _REFUSED:
            raise ValueError(f"pattern must not use {_REFUSED[op]} (unbounded backtracking)")
        if op in _REPEATS:
            low, high, body = arg
            if high is C.MAXREPEAT or high > _BIG_REPEAT:
                unbounded += 1
            problem = _holds_choice(body) if high is C.MAXREPEAT or high > 1 else None  # "?" repeats nothing
            if problem is not None:
                raise ValueError(f"pattern must not have {problem} (exponential backtracking)")
    if unbounded > MAX_UNBOUNDED:
        raise ValueError(
            f"pattern has {unbounded} unbounded quantifiers; at most {MAX_UNBOUNDED} (each more "
            "multiplies the backtracking)"
        )
    return compiled


def check_replacement(compiled: re.Pattern[str], replacement: str) -> str:
    """``replacement`` if it is valid for ``compiled`` (group references that exist) and starts the
    path with ``/``; else ``ValueError``."""
    if not replacement.startswith("/"):
        raise ValueError("replacement must start with '/' (the path the upstream receives)")
    try:
        compiled.sub(replacement, "")  # parses the template (group references) even with no match
    except re.error as exc:
        raise ValueError(f"replacement is not valid for the pattern: {exc}") from None
    return replacement


@dataclass(frozen=True)
class Rewrite:
    pattern: re.Pattern[str]
    replacement: str

    def apply(self, canonical: str) -> str:
        """The rewritten path, percent-encoded, for a canonical (decoded) path. :class:`RewriteRefused`
        for a path too long to search or a result that is not a plain origin-form path."""
        if len(canonical) > MAX_PATH:
            raise RewriteRefused(f"path longer than {MAX_PATH} characters", status=414)
        result = self.pattern.sub(self.replacement, canonical, count=1)
        problem = unsafe_result(result)
        if problem is not None:
            raise RewriteRefused(f"rewritten path {problem}")
        return quote(result.encode("utf-8", "surrogateescape"), safe=_SAFE_PATH_CHARS)


def unsafe_result(path: str) -> str | None:
    """Why a (decoded) rewritten path is not a plain origin-form path, or ``None``."""
    if path[:1] != "/" or path.startswith("//"):
        return "does not start with a single '/'"
    if "//" in path or "\\" in path:
        return "has '//' or '\\'"
    if re.search(r"[\x00-\x1f\x7f]", path):
        return "has a control character"
    if "?" in path or "#" in path:
        return "has '?' or '#'"
    segments = path.split("/")
    if any(s in (".", "..") for s in segments):
        return "has a dot segment"
    return None

"""Operator regexes that a hostile subject can't make slow. Pure.

Python's ``re`` backtracks and has no timeout, so a pattern such as ``(a+)+$`` or ``^/.*a.*a.*b``
takes seconds to minutes on a crafted path. Patterns in ``authorization.rules[].path`` and
``headers.groups_filter`` are therefore checked once at start-up and refused unless they stay in a
subset whose worst case is bounded:

- at most :data:`MAX_PATTERN` characters;
- no backreferences (``\\1``, ``(?P=name)``), lookarounds (``(?=``, ``(?!``, ``(?<=``, ``(?<!``) or
  conditionals (``(?(``);
- no repeated group that itself holds a quantifier or an alternation (``(a+)+``, ``(a|ab)*``: the
  exponential cases); a group may still be optional (``(?:/x)?``);
- at most :data:`MAX_REPEATS` repeating quantifiers (``*``, ``+``, ``{m,n}``) in the whole pattern.

And the subject is capped: :func:`bounded_match` never runs a pattern on more than ``max_len``
characters (the caller decides what a longer subject means; rules deny, filters drop). With two
repeats and an anchored match (``re.match``) the worst case is quadratic: ~0.03 s for 2,048
characters on one core (measured: ``^/.*a.*b`` on ``/aaaa...``); a third repeat makes it cubic
(~10 s), which is why it is refused.
"""

from __future__ import annotations

import re

MAX_PATTERN = 256
MAX_REPEATS = 2
_QUANT = re.compile(r"\{(\d*)(,?)(\d*)\}")
_GROUP_OPEN = re.compile(r"\(\?(?::|P<[A-Za-z_][A-Za-z0-9_]*>|[aiLmsux-]+[:)])")


class UnsafeRegex(ValueError):
    """The pattern is outside the bounded subset (the message says which construct)."""


def _quantifier(pattern: str, i: int) -> tuple[int, bool] | None:
    """At ``pattern[i]``: (length, repeats) of a quantifier, or ``None``. ``?`` and ``{0,1}`` don't
    repeat."""
    c = pattern[i]
    if c in "*+":
        return 1, True
    if c == "?":
        return 1, False
    if c == "{":
        m = _QUANT.match(pattern, i)
        if m and (m.group(1) or m.group(3)):
            low, comma, high = m.group(1), m.group(2), m.group(3)
            most = high if comma else low  # {m} repeats exactly m times; {m,} without end
            return m.end() - i, not (most in ("0", "1") and (most or not comma))
    return None


def check(pattern: str) -> re.Pattern[str]:
    """The compiled pattern, or :class:`UnsafeRegex` / ``ValueError`` saying what is wrong."""
    if len(pattern) > MAX_PATTERN:
        raise UnsafeRegex(f"longer than {MAX_PATTERN} characters")
    repeats = 0
    stack: list[list[bool]] = []  # per open group: [holds a quantifier, holds an alternation]
    closed: list[bool] | None = None  # the group that just closed (a quantifier may follow it)
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        after_group, closed = closed, None
        if c == "\\":
            if i + 1 < n and pattern[i + 1] in "123456789":
                raise UnsafeRegex("backreferences are not allowed")
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            if pattern.startswith("(?", i):
                m = _GROUP_OPEN.match(pattern, i)
                if m is None:
                    raise UnsafeRegex("lookarounds, backreferences and conditionals are not allowed")
                if m.group(0).endswith(")"):  # inline flags such as (?i)
                    i = m.end()
                    continue
                i = m.end()
            else:
                i += 1
            stack.append([False, False])
            continue
        if c == ")":
            closed = stack.pop() if stack else [False, False]
            if stack:
                stack[-1][0] |= closed[0]
                stack[-1][1] |= closed[1]
            i += 1
            continue
        if c == "|":
            if stack:
                stack[-1][1] = True
            i += 1
            continue
        q = _quantifier(pattern, i)
        if q is not None:
            length, repeating = q
            if repeating:
                if after_group is not None and (after_group[0] or after_group[1]):
                    raise UnsafeRegex(
                        "a repeated group must not hold a quantifier or '|' (nested quantifiers)"
                    )
                repeats += 1
                if repeats > MAX_REPEATS:
                    raise UnsafeRegex(f"more than {MAX_REPEATS} repeating quantifiers (*, +, {{m,n}})")
            if stack:
                stack[-1][0] = True
            i += length
            if i < n and pattern[i] in "?+":  # lazy or possessive
                i += 1
            continue
        i += 1
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regex: {exc}") from None


def bounded_match(pattern: re.Pattern[str], subject: str, max_len: int) -> bool | None:
    """``pattern.match(subject)``; ``None`` (not run) when ``subject`` is longer than ``max_len``."""
    if len(subject) > max_len:
        return None
    return pattern.match(subject) is not None

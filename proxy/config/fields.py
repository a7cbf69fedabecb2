"""Field types and shared validation for the settings sections."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
)

from ..claims import check_path
from ..trusted_proxies import parse_network

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``"8h"``, ``"30m"``, ``"10s"``, ``"250ms"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as '8h', '30m' or '10s' is required")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float: YAML reads 400 digits as one
            raise ValueError("a duration must be a positive, finite number") from None
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration such as '8h', '30m', '10s' or '250ms'")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("a duration must be a positive, finite number")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _http_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key} must be an absolute http(s) URL, got {value!r}")
    return value


def _read_secret(path: Path, key: str) -> SecretStr:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {str(path)!r}: {exc.strerror}") from None
    if not text:
        raise ValueError(f"{key}: {str(path)!r} is empty")
    return SecretStr(text)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _names(values: list[str]) -> list[str]:
    names = [v.strip() for v in values]
    if any(not n for n in names):
        raise ValueError("entries must not be empty")
    return names


def _emails(values: list[str]) -> list[str]:
    emails = [v.strip().lower() for v in values]
    bad = [e for e in emails if e.count("@") != 1 or e.startswith("@") or e.endswith("@")]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an email address")
    return emails


def _domains(values: list[str]) -> list[str]:
    domains = [v.strip().lower().removeprefix("@") for v in values]
    bad = [d for d in domains if not re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*", d)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a domain such as 'example.com'")
    return domains


def _claim_paths(values: list[str]) -> list[str]:
    return [check_path(v) for v in values]


Names = Annotated[list[str], AfterValidator(_names)]


def _cidrs(values: list[str]) -> list[str]:
    for value in values:
        parse_network(value)  # ValueError names the entry
    return values


Cidrs = Annotated[list[str], AfterValidator(_cidrs)]
"""CIDRs or single addresses (``server.trusted_proxies``, ``upstreams[].trusted_ips``)."""
Emails = Annotated[list[str], AfterValidator(_emails)]
Domains = Annotated[list[str], AfterValidator(_domains)]

"""Attack table for cors.allowed_origins: which Origin values a policy accepts. Suffix and prefix
tricks, case, ports, schemes, null, lists and garbage; exact entries and subdomain patterns."""

from __future__ import annotations

import pytest

from proxy.config.cors import CorsConfig

POLICY = CorsConfig(
    allowed_origins=["https://app.example.com", "http://localhost:8080", "https://*.example.org"]
).policy
assert POLICY is not None

CASES = [
    # exact entries
    ("https://app.example.com", True),
    ("https://app.example.com:443", True),  # the default port spelled out: the same origin
    ("HTTPS://APP.EXAMPLE.COM", True),  # scheme and host are case-insensitive
    ("http://app.example.com", False),  # another scheme
    ("https://app.example.com:8443", False),  # another port
    ("https://app.example.com.evil.com", False),  # the allowed name as a prefix
    ("https://evil-app.example.com", False),
    ("https://evilapp.example.com", False),
    ("https://sub.app.example.com", False),  # exact means exact: no subdomains
    ("https://example.com", False),
    ("https://app.example.com/", False),  # a path is not an origin
    ("https://app.example.com/x", False),
    ("https://user@app.example.com", False),
    ("https://app.example.com?x", False),
    ("https://app.example.com#x", False),
    ("https://app.example.com.", False),  # a trailing dot: another name to DNS, not the same origin
    ("https://app.example.com, https://evil.com", False),  # a list
    ("https://evil.com https://app.example.com", False),
    ("null", False),  # sandboxed frames, file:, data: anyone can make one
    ("NULL", False),
    ("", False),
    ("*", False),
    ("https://app%2eexample.com", False),
    ("https://app.example.com\r\nX-Evil: 1", False),
    ("https://app.example.com\x00", False),
    ("ws://app.example.com", False),
    ("file://app.example.com", False),
    ("https://[::1]", False),
    ("http://localhost:8080", True),
    ("http://localhost", False),
    ("http://localhost:80", False),
    ("http://127.0.0.1:8080", False),  # the same machine, not the same origin
    ("http://localhost:08080", True),  # leading zero: the same port number (browsers never send it)
    # subdomain patterns: https://*.example.org
    ("https://a.example.org", True),
    ("https://a.b.example.org", True),
    ("https://A.EXAMPLE.ORG", True),
    ("https://example.org", False),  # the apex is not a subdomain
    ("https://.example.org", False),
    ("https://evil-example.org", False),
    ("https://evilexample.org", False),
    ("https://example.org.evil.com", False),
    ("https://a.example.org.evil.com", False),
    ("https://a.example.org:8443", False),
    ("http://a.example.org", False),
    ("https://a..example.org", False),
    ("https://a.example.org/", False),
    ("https://a_b.example.org", False),
]


@pytest.mark.parametrize(("origin", "allowed"), CASES)
def test_origin(origin: str, allowed: bool) -> None:
    assert POLICY.allows(origin) is allowed

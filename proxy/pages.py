"""The proxy's own responses to people and to programs: small HTML pages, or JSON for API clients.

Pages never show a stack trace or a token: a title, one sentence, a link to try again.
"""

from __future__ import annotations

import html
import json
import secrets
from importlib import resources
from string import Template

from aiohttp import web

from .keys import REQUEST_ID

_TEMPLATE = Template(resources.files("proxy").joinpath("templates/page.html").read_text(encoding="utf-8"))

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def wants_html(request: web.BaseRequest) -> bool:
    """Browsers navigating get pages and redirects; API clients (no text/html, or XHR) get JSON."""
    if request.headers.get("X-Requested-With"):
        return False
    return "text/html" in request.headers.get("Accept", "")


def csp(nonce: str) -> str:
    return (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "form-action *; frame-ancestors 'none'; base-uri 'none'"
    )


def html_page(
    request: web.BaseRequest, status: int, title: str, message: str, body: str = "", nonce: str | None = None
) -> web.Response:
    """A page; ``body`` is trusted HTML made by the caller (escape what goes into it)."""
    nonce = nonce or secrets.token_urlsafe(16)
    text = _TEMPLATE.substitute(
        title=html.escape(title),
        message=html.escape(message),
        body=body,
        status=status,
        request_id=html.escape(request.get(REQUEST_ID, "-")),
        nonce=nonce,
    )
    headers = {**NO_STORE, "Content-Security-Policy": csp(nonce), "X-Frame-Options": "DENY"}
    return web.Response(status=status, text=text, content_type="text/html", headers=headers)


def link(url: str, label: str) -> str:
    return f'<p><a class="button" href="{html.escape(url, quote=True)}">{html.escape(label)}</a></p>'


def error(
    request: web.BaseRequest, status: int, title: str, message: str, *, retry_url: str | None = None
) -> web.Response:
    """An error in the form the client wants: a page with a retry link, or ``{"error": ...}``."""
    if wants_html(request):
        return html_page(request, status, title, message, link(retry_url, "Try again") if retry_url else "")
    payload = {
        "error": title,
        "message": message,
        "status": status,
        "request_id": request.get(REQUEST_ID, "-"),
    }
    return web.Response(
        status=status, text=json.dumps(payload), content_type="application/json", headers=NO_STORE
    )

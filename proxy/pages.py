"""The proxy's own responses to people and to programs: small HTML pages, or JSON for API clients.

Pages never show a stack trace or a token: a title, one sentence, a link to try again. They are
rendered from templates (``string.Template``: ``$title $message $body $status $request_id $nonce
$provider``) that users may replace from their own directory (``pages.templates_dir``); every
template is read and checked once, at start-up.
"""

from __future__ import annotations

import html
import json
import secrets
from importlib import resources
from pathlib import Path
from string import Template

from aiohttp import web

from .keys import REQUEST_ID, TEMPLATES

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
KINDS = ("error", "forbidden", "sign_in", "signed_out", "signed_out_local", "signing_out")
"""Pages that may have a template of their own; each falls back to page.html."""
_FIELDS = ("title", "message", "body", "status", "request_id", "nonce", "provider")


class TemplateError(Exception):
    """A user template that can't be used; the message names the file."""


def _check(name: str, template: Template) -> Template:
    try:
        template.substitute({f: "x" for f in _FIELDS})
    except (KeyError, ValueError) as exc:
        raise TemplateError(f"template {name}: unknown or malformed placeholder {exc}") from None
    return template


class Templates:
    """The page templates in force: the user's where given, else the built-in layout."""

    def __init__(self, directory: Path | None = None, provider: str = "the sign-in provider") -> None:
        self.provider = provider
        builtin = resources.files("proxy").joinpath("templates/page.html").read_text(encoding="utf-8")
        self._layout = _check("page.html (built-in)", Template(builtin))
        self._kinds: dict[str, Template] = {}
        if directory is not None:
            for name in ("page", *KINDS):
                path = directory / f"{name}.html"
                if not path.is_file():
                    continue
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise TemplateError(f"template {path}: cannot be read ({exc})") from None
                template = _check(str(path), Template(text))
                if name == "page":
                    self._layout = template
                else:
                    self._kinds[name] = template

    def render(self, kind: str, **fields: str) -> str:
        return self._kinds.get(kind, self._layout).substitute(fields, provider=html.escape(self.provider))


_DEFAULT = Templates()


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
    request: web.BaseRequest,
    status: int,
    title: str,
    message: str,
    body: str = "",
    nonce: str | None = None,
    kind: str = "page",
) -> web.Response:
    """A page; ``body`` is trusted HTML made by the caller (escape what goes into it)."""
    nonce = nonce or secrets.token_urlsafe(16)
    templates = request.app.get(TEMPLATES, _DEFAULT) if isinstance(request, web.Request) else _DEFAULT
    text = templates.render(
        kind,
        title=html.escape(title),
        message=html.escape(message),
        body=body,
        status=str(status),
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
        body = link(retry_url, "Try again") if retry_url else ""
        kind = "forbidden" if status == 403 else "error"
        return html_page(request, status, title, message, body, kind=kind)
    payload = {
        "error": title,
        "message": message,
        "status": status,
        "request_id": request.get(REQUEST_ID, "-"),
    }
    return web.Response(
        status=status, text=json.dumps(payload), content_type="application/json", headers=NO_STORE
    )

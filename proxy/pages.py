"""The proxy's own responses to people and to programs: small HTML pages, or JSON for API clients.

Pages never show a stack trace or a token: a title, one sentence, a link to try again. They are
rendered from templates (``string.Template``: ``$title $message $body $status $request_id $nonce
$provider``) that users may replace from their own directory (``pages.templates_dir``); every
template is read and checked once, at start-up.

What goes into a page's ``$body`` (a link, a form) is a fragment, from ``templates/parts``:
:func:`fragment` escapes every value put into one, unless it is :class:`Html` already (another
fragment), so a page body is never built from strings by hand.
"""

from __future__ import annotations

import html
import json
import secrets
from string import Template

from aiohttp import web

from .keys import REQUEST_ID, TEMPLATES
from .page_templates import Templates, builtin

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Html(str):
    """Markup that is safe to place in a page as it is: made by :func:`fragment`, never from text
    someone else chose."""

    __slots__ = ()


_PARTS = {
    name: Template(builtin(f"parts/{name}.html"))
    for name in ("link", "signed_in_as", "sign_out_form", "post_form", "hidden_field")
}


def fragment(name: str, /, **values: str) -> Html:
    """The fragment ``templates/parts/<name>.html`` with ``values`` put in, each HTML-escaped
    (quotes too: values go into attributes) unless it is :class:`Html`."""
    escaped = {k: v if isinstance(v, Html) else html.escape(v, quote=True) for k, v in values.items()}
    return Html(_PARTS[name].substitute(escaped))


def concat(*parts: Html) -> Html:
    return Html("".join(parts))


NO_BODY = Html("")
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
    body: Html = NO_BODY,
    nonce: str | None = None,
    kind: str = "page",
) -> web.Response:
    """A page; ``body``: fragments (:func:`fragment`)."""
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


def link(url: str, label: str) -> Html:
    return fragment("link", url=url, label=label)


def error(
    request: web.BaseRequest, status: int, title: str, message: str, *, retry_url: str | None = None
) -> web.Response:
    """An error in the form the client wants: a page with a retry link, or ``{"error": ...}``."""
    if wants_html(request):
        body = link(retry_url, "Try again") if retry_url else NO_BODY
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

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
from importlib import resources
from pathlib import Path
from string import Template

from aiohttp import web

from .keys import REQUEST_ID, TEMPLATES

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
KINDS = ("error", "forbidden", "sign_in", "signed_out", "signing_out")
"""Pages that may have a template of their own; each falls back to page.html."""
_FIELDS = ("title", "message", "body", "status", "request_id", "nonce", "provider")


class TemplateError(Exception):
    """A user template that can't be used; the message names the file."""


class Html(str):
    """Markup that is safe to place in a page as it is: made by :func:`fragment`, never from text
    someone else chose."""

    __slots__ = ()


def builtin(name: str) -> str:
    """The built-in template ``templates/<name>``, without its final newline."""
    text = resources.files("proxy").joinpath("templates", name).read_text(encoding="utf-8")
    return text.removesuffix("\n")


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
        self._layout = _check("page.html (built-in)", Template(builtin("page.html") + "\n"))
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

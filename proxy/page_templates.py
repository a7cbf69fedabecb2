"""The page templates in force (``string.Template``: ``$title $message $body $status $request_id
$nonce $provider``): the built-in layout, or the user's own from ``pages.templates_dir``. Every
template is read and checked once, at start-up; ``proxy.pages`` renders them.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from string import Template

KINDS = ("error", "forbidden", "sign_in", "signed_out", "signed_out_local", "signing_out")
"""Pages that may have a template of their own; each falls back to page.html."""
_FIELDS = ("title", "message", "body", "status", "request_id", "nonce", "provider")


def builtin(name: str) -> str:
    """The built-in template ``templates/<name>``, without its final newline."""
    text = resources.files("proxy").joinpath("templates", name).read_text(encoding="utf-8")
    return text.removesuffix("\n")


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

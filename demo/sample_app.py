"""A sample upstream that knows nothing of auth: it shows the identity headers the proxy sent it and
offers a sign-out button (which lands on the proxy's own /oauth/signed_out page). The button's form
carries the sign-out CSRF token the proxy sends in ``X-Auth-Request-Csrf-Token``, as every app's should:
with ``logout.allow_get: false`` the proxy refuses a sign-out without it.
``python demo/sample_app.py [port]``."""

from __future__ import annotations

import html
import sys

from aiohttp import web

SHOWN = ("X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups",
         "X-Forwarded-Groups-Truncated", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host")  # fmt: skip

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sample app</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:3rem auto;padding:0 1rem}}
td{{padding:.2rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}}td:first-child{{white-space:nowrap}}td+td{{word-break:break-all}}</style></head>
<body><h1>Hello, {user}</h1><p>This app has no login code of its own. The auth proxy in front of it sent
these headers:</p><table>{rows}</table>
<form method="post" action="/oauth/sign_out?rd=/oauth/signed_out">
<input type="hidden" name="csrf" value="{csrf}">
<p><button type="submit">Sign out</button></p></form>
</body></html>"""


async def index(request: web.Request) -> web.Response:
    rows = "".join(
        f"<tr><td>{html.escape(h)}</td><td>{html.escape(request.headers.get(h, '—'))}</td></tr>"
        for h in SHOWN
    )
    user = html.escape(request.headers.get("X-Forwarded-User", "stranger"))
    csrf = html.escape(request.headers.get("X-Auth-Request-Csrf-Token", ""), quote=True)
    return web.Response(text=PAGE.format(user=user, rows=rows, csrf=csrf), content_type="text/html")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/{tail:.*}", index)
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(), host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8080, print=None
    )

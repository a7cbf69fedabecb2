"""Upstreams the proxy answers itself: ``static://<code>`` and ``file:///dir``.

``static://204`` answers every request to its prefix with that status and an empty body (a health
check, or ``static://404`` to close a path off). ``file:///srv/site`` serves the files under that
directory (GET and HEAD; anything else 405), with aiohttp's ``FileResponse`` (ranges, conditional
requests, precompressed ``.br``/``.gz`` siblings).

The file is found from the canonical path (``proxy.paths.canonical_path``: decoded once, ``\\`` read
as ``/``, dot segments resolved, so no spelling of ``..`` survives; the router has already refused a
path that servers read differently, and a NUL), the part after the prefix (or the rewritten path).
Then, fail closed:

- a segment that is empty, ``.``/``..``, holds a NUL or ``\\``, or is not valid UTF-8 → 404;
- the file's real path (every symlink resolved) must be inside the directory's real path, and so
  must any ``.br``/``.gz`` sibling that ``FileResponse`` could pick instead; else 404 (logged);
- a directory is never listed: its ``index.html`` is served if there is one, else 404;
- only regular files.

A symlink swapped between the check and the open is outside this model: the directory must not be
writable by anyone the proxy does not trust.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from aiohttp import hdrs, web

from . import pages

log = logging.getLogger(__name__)

_COMPRESSED = (".br", ".gz")
INDEX = "index.html"


def static_answer(status: int) -> web.Response:
    """The fixed answer of a ``static://`` upstream."""
    return web.Response(status=status, headers={"Cache-Control": "no-store"})


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve(root: str, relative: str) -> Path | None:
    """The real path of the regular file ``relative`` (a decoded path under ``root``, ``/``
    separated) names, or ``None`` when there is none or it would leave ``root``."""
    segments = relative.split("/")
    if segments and segments[0] == "":
        segments = segments[1:]
    trailing = bool(segments) and segments[-1] == ""
    if trailing:
        segments = segments[:-1]
    for segment in segments:
        if segment in ("", ".", "..") or "\x00" in segment or "\\" in segment:
            return None
        try:
            segment.encode("utf-8")
        except UnicodeEncodeError:  # surrogates: bytes that are not UTF-8
            return None
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, *segments))
    if not _inside(real_root, candidate):
        return None
    if os.path.isdir(candidate):
        candidate = os.path.realpath(os.path.join(candidate, INDEX))
        if not _inside(real_root, candidate):
            return None
    elif trailing:
        return None  # /file.txt/ is no file
    if not os.path.isfile(candidate):
        return None
    for suffix in _COMPRESSED:  # what FileResponse may send instead, following its symlinks
        sibling = candidate + suffix
        if os.path.lexists(sibling) and not _inside(real_root, os.path.realpath(sibling)):
            return None
    return Path(candidate)


async def serve_file(request: web.Request, root: str, relative: str) -> web.StreamResponse:
    """A file under ``root`` (see the module docstring)."""
    if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
        return web.Response(status=405, headers={"Allow": "GET, HEAD", "Cache-Control": "no-store"})
    path = await asyncio.to_thread(resolve, root, relative)  # stat() calls: off the event loop
    if path is None:
        log.info(
            "no file to serve",
            extra={"event": "file_not_found", "status": 404, "path": request.raw_path[:512]},
        )
        return pages.error(request, 404, "Not found", "There is no such file.")
    return web.FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})

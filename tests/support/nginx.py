"""The real nginx (Debian's package), run by the tests with a site file from deploy/nginx/."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import free_port, wait_port

MAIN_CONF = """
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # Nothing about buffer sizes here: the test proves nginx's defaults suffice.
    include {site};
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx is not installed: run scripts/test.sh (it installs nginx-light)")
    return found


@contextmanager
def nginx(site_text: str, port: int | None = None, ssl: bool = False) -> Iterator[tuple[int, Path]]:
    """Run nginx with ``site_text`` (its ``listen 80;`` moved to ``port``, else a free loopback port;
    ``ssl``: with TLS, the site then names its ``ssl_certificate``)."""
    workdir = Path(tempfile.mkdtemp(prefix="auth-proxy-nginx-"))
    port = port or free_port()
    site = workdir / "site.conf"
    site.write_text(site_text.replace("listen 80;", f"listen 127.0.0.1:{port}{' ssl' if ssl else ''};"))
    conf = workdir / "nginx.conf"
    conf.write_text(MAIN_CONF.format(dir=workdir, site=site))
    check = subprocess.run(
        [nginx_binary(), "-t", "-c", str(conf), "-p", str(workdir)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([nginx_binary(), "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port)
        yield port, workdir
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

"""The command line: config errors name the key and exit 2; a good config starts a real process."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)  # fmt: skip


def test_example_and_demo_configs_are_valid() -> None:
    env = {"AUTH_PROXY_COOKIE__SECRET": "x" * 32, "PATH": "/usr/bin:/bin"}
    done = run("--config", "config/proxy.example.yaml", "--check-config", env=env)
    assert done.returncode == 0, done.stderr
    assert run("--config", "config/demo.yaml", "--check-config").returncode == 0


def test_a_wrong_key_stops_start_up_and_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "provider: {issuer_url: 'http://kc/realms/x', client_id: p, client_secrett: s}\n"
        "cookie: {secret: '" + "s" * 32 + "'}\nsesion: {}\n"
    )
    done = run("--config", str(bad))
    assert done.returncode == 2
    assert "provider.client_secrett: unknown key" in done.stderr
    assert "sesion: unknown key" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    done = run("--config", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2 and "cannot read config file" in done.stderr


def test_the_process_serves_and_stops(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "p.yaml"
    issuer = f"http://127.0.0.1:{free_port()}/realms/x"  # nobody there: discovery keeps retrying
    cfg.write_text(
        f"server: {{listen: '127.0.0.1:{port}'}}\n"
        f"provider: {{issuer_url: '{issuer}', client_id: p, client_secret: s}}\n"
        "cookie: {secret: '" + "s" * 32 + "'}\nsession: {store: memory}\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "--config", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_port(port, timeout=20)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as r:
            assert r.status == 200 and r.read() == b"OK"
    finally:
        proc.terminate()
        started = time.monotonic()
        _, err = proc.communicate(timeout=40)
    assert time.monotonic() - started < 35
    assert "provider discovery failed" in err  # logged, retried, the process stayed up


def test_check_config_prints_the_rule_table_and_names_a_bad_rule(tmp_path: Path) -> None:
    head = "provider: {issuer_url: 'http://kc/realms/x', client_id: p, client_secret: s}\n" + (
        "cookie: {secret: '" + "s" * 32 + "'}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(
        head + "authorization:\n  rules:\n"
        "    - {path: /admin, methods: [DELETE], deny: true, name: no deletes}\n"
        "    - {path: '^/api/v[0-9]+/', allowed_roles: [auditor], claims: {org.tenant: [acme]},\n"
        "       require: any}\n"
    )
    done = run("--config", str(good), "--check-config")
    assert done.returncode == 0, done.stderr
    assert "[0] (no deletes) DELETE prefix /admin: deny" in done.stdout
    assert (
        "[1] * regex ^/api/v[0-9]+/: allow if allowed_roles in [auditor] or claims.org.tenant in [acme]"
        in (done.stdout)
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(head + "authorization:\n  rules:\n    - {path: /x}\n    - {path: '^(a+)+'}\n")
    done = run("--config", str(bad), "--check-config")
    assert done.returncode == 2 and "authorization.rules.1.path" in done.stderr and "nested" in done.stderr
    assert "Traceback" not in done.stderr

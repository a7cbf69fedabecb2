"""``auth-proxy --config config/proxy.yaml`` (same as ``python -m proxy --config ...``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aiohttp import web

from .app import create_app
from .config import ConfigError, load_settings
from .logs import AccessLogger, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="auth-proxy", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("AUTH_PROXY_CONFIG"),
        help="YAML config file (default: $AUTH_PROXY_CONFIG); every key can be set from AUTH_PROXY_* too",
    )
    parser.add_argument("--log-level", default=os.environ.get("AUTH_PROXY_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    parser.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"auth-proxy: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print("configuration OK")
        return 0
    setup_logging(args.log_level, json_output=args.log_format == "json")
    web.run_app(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        access_log_class=AccessLogger,
        print=None,
        shutdown_timeout=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

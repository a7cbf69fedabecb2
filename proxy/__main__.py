"""``auth-proxy --config config/proxy.yaml`` (same as ``python -m proxy --config ...``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .app import create_app
from .config import ConfigError, load_settings
from .cpus import usable_cpus
from .logs import setup_logging
from .rules import RuleTable
from .workers import serve, supervise


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
    parser.add_argument(
        "--workers",
        metavar="N|auto",
        help="processes sharing the port, each with its own event loop (default: server.workers, auto: "
        "the CPUs this process may use)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"auth-proxy: {exc}", file=sys.stderr)
        return 2
    asked = settings.server.workers if args.workers is None else args.workers
    if asked == "auto":
        workers = 1 if settings.session.store == "memory" else min(usable_cpus(), 64)
    elif isinstance(asked, int) or asked.isdigit():
        workers = int(asked)
    else:
        workers = 0
    if not 1 <= workers <= 64:
        print("auth-proxy: --workers must be auto or from 1 to 64", file=sys.stderr)
        return 2
    if workers > 1 and settings.session.store == "memory":
        print(
            "auth-proxy: several workers need session.store: redis (memory is per process)", file=sys.stderr
        )
        return 2
    settings = settings.model_copy(update={"server": settings.server.model_copy(update={"workers": workers})})
    try:
        app = create_app(settings)  # the same checks every worker will make, once, before any starts
    except ConfigError as exc:
        print(f"auth-proxy: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print("\n".join(RuleTable(settings.authorization.rules).describe()))
        print("configuration OK")
        return 0
    json_output = args.log_format == "json"
    setup_logging(args.log_level, json_output=json_output)
    if asked == "auto":
        logging.getLogger("proxy").info(
            "workers: auto is %d (%s)",
            workers,
            "the memory session store is per process"
            if settings.session.store == "memory"
            else "usable CPUs",
            extra={"event": "workers", "workers": workers},
        )
    if workers == 1:
        serve(settings, app)
        return 0
    return supervise(settings, workers, args.log_level, json_output)


if __name__ == "__main__":
    sys.exit(main())

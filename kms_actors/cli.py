"""The ``kms-actors`` command: one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import anyio

from kms_actors import __version__, cli_audit, loadtest
from kms_actors.config import ConfigError, Settings, load_settings
from kms_actors.service import open_service

log = logging.getLogger("kms_actors")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kms-actors", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kms-actors {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--config", help="TOML settings file (default: config/kms.toml)")
    serve.add_argument("--data-dir", help="data directory (overrides service.data_dir)")
    serve.add_argument("--host", help="bind address (overrides http.host)")
    serve.add_argument("--port", type=int, help="TCP port (overrides http.port)")
    serve.add_argument("--log-level", default="INFO")
    loadtest.add_parser(sub)
    cli_audit.add_parser(sub)
    return parser


async def _serve(settings: Settings) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_service(settings, http=True) as service:
            assert service.http_address is not None
            host, port = service.http_address
            print(
                f"kms-actors {__version__} listening on http://{host}:{port} "
                f"(data in {service.settings.data_path}). Ctrl-C stops.",
                flush=True,
            )
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                return


def main(argv: list[str] | None = None) -> None:
    """Run the command line."""
    args = _parser().parse_args(argv)
    if args.command == "loadtest":
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        raise SystemExit(loadtest.run(args))
    if args.command == "audit":
        raise SystemExit(cli_audit.run(args))
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["service.data_dir"] = args.data_dir
    if args.host:
        overrides["http.host"] = args.host
    if args.port is not None:
        overrides["http.port"] = args.port
    try:
        settings = load_settings(args.config, overrides=overrides)
    except ConfigError as error:
        print(f"kms-actors: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        anyio.run(_serve, settings, backend_options=_backend_options())
    except ValueError as error:  # e.g. an unusable root key file: a one-line reason
        print(f"kms-actors: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


def _backend_options() -> dict[str, object]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}

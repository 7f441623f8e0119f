"""Command line: ``python -m ioc CONFIG`` serves an IOC; ``python -m ioc convert FILE.db`` prints YAML."""
from __future__ import annotations

import argparse
import logging
import signal
import sys

import trio

log = logging.getLogger("ioc")


def _macros(text: str | None) -> dict[str, str]:
    macros: dict[str, str] = {}
    for item in (text or "").split(","):
        if item.strip():
            name, _, value = item.partition("=")
            macros[name.strip()] = value.strip()
    return macros


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ioc", description=(
        "Serve EPICS records over Channel Access. CONFIG is a YAML IOC declaration or an EPICS .db file. "
        "Use 'python -m ioc convert FILE.db' to turn a .db file into YAML."))
    parser.add_argument("config", help="YAML (or .db) file declaring the records")
    parser.add_argument("--macros", "-m", help="macro substitutions, e.g. P=IOC:,R=m1")
    parser.add_argument("--list-pvs", action="store_true", help="print every served PV and exit")
    parser.add_argument("--interfaces", nargs="+", metavar="ADDR",
                        help="addresses to serve on (default EPICS_CAS_INTF_ADDR_LIST or all)")
    parser.add_argument("--port", type=int, help="CA server port (default EPICS_CAS_SERVER_PORT or 5064)")
    parser.add_argument("--skip-unsupported", action="store_true",
                        help="skip records of unsupported types in .db files, with a warning")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only errors")
    return parser


def _convert_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ioc convert",
                                     description="Print an EPICS .db file as a YAML IOC declaration.")
    parser.add_argument("db", help="the .db file")
    parser.add_argument("--macros", "-m", help="macro substitutions, e.g. P=IOC:,R=m1")
    parser.add_argument("--skip-unsupported", action="store_true",
                        help="skip records of unsupported types, with a warning")
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def convert_main(argv: list[str]) -> int:
    from .config import ConfigError
    from .dbfile import convert_db_to_yaml

    args = _convert_parser().parse_args(argv)
    _configure_logging(0, False)
    try:
        sys.stdout.write(convert_db_to_yaml(args.db, _macros(args.macros),
                                            skip_unsupported=args.skip_unsupported))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve_until_signalled(database, settings) -> None:
    from .server import serve

    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await nursery.start(serve, database, settings)
            async for signum in signals:
                log.info("%s received: shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "convert":
        return convert_main(argv[1:])
    args = _run_parser().parse_args(argv)
    _configure_logging(args.verbose, args.quiet)

    from .config import ConfigError, load_config
    from .database import Database
    from .environment import ServerSettings

    try:
        config = load_config(args.config, _macros(args.macros))
        database = Database.from_config(config, skip_unsupported=args.skip_unsupported)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {args.config}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.list_pvs:
        for name in database.pv_names():
            print(name)
        return 0
    settings = ServerSettings.from_environment()
    if args.interfaces:
        settings.interfaces = list(args.interfaces)
    if args.port is not None:
        settings.port = args.port
    trio.run(_serve_until_signalled, database, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

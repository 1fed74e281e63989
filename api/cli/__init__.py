"""The ``hil`` command line: one module per subcommand, each with ``add_parser``.

Also ``python -m crossbar_hil.api``. Exit status of every subcommand: 0 done, 1 an unexpected
error (a bug), 2 bad input (nothing sent), 3 the instrument could not be reached or
reported a fault, 4 stopped on request (Ctrl-C, SIGTERM, SIGHUP).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from crossbar_hil import __version__

SUBCOMMANDS = (
    "train",
    "characterize",
    "calibrations",
    "instruments",
    "emulate",
    "sweep",
    "experiment",
    "serve",
    "runs",
    "estop",
)
"""The modules here that each add one subcommand: add_parser(subparsers) sets func=run(args) -> int.
They are imported when the parser is built, and import what is heavy (plots, the service, the
drivers' libraries) only when their command runs, so ``hil --version`` and ``--help`` are quick."""

OWN_LOGGERS = ("hil", "drivers", "emulator", "api", "crossbar_hil")
"""Loggers of crossbar-hil itself; -v shows their debug messages on the screen."""
REPORTED_LOGGERS = ("hil", "drivers")
"""Loggers whose errors a command reports itself (its one-line error, the run's summary)."""


def add_logging_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    """-v and --log-file, accepted before and after the subcommand."""
    default = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="Show crossbar-hil's debug messages (the instrument traffic among them).",
        **({"default": False} if top else default),
    )
    p.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="Append every log message, the libraries' internals too, to PATH.",
        **({"default": None} if top else default),
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by tests and --help)."""
    parser = argparse.ArgumentParser(
        prog="hil",
        description="In-situ training of memristor crossbars, hardware in the loop. "
        "Also runs as `python -m crossbar_hil.api`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s (crossbar-hil) {__version__}")
    add_logging_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"crossbar_hil.api.cli.{name}").add_parser(sub)
    for subparser in sub.choices.values():
        add_logging_options(subparser, top=False)
    return parser


def configure_logging(verbose: bool, log_file: Path | None) -> None:
    """Warnings on the screen; with -v crossbar-hil's own debug messages too (not the
    libraries'); with --log-file everything, at debug level, to the file."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    screen = logging.StreamHandler(sys.stderr)
    screen.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    screen.setLevel(logging.DEBUG if verbose else logging.WARNING)
    screen.addFilter(lambda r: _on_screen(r, verbose))
    root.addHandler(screen)
    root.setLevel(logging.DEBUG if (verbose or log_file) else logging.WARNING)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file_handler)
    if verbose and log_file is None:
        # Without a file, keep the libraries quiet below warnings (their records are not even made).
        for name in logging.root.manager.loggerDict:
            if name.split(".")[0] not in OWN_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)


def _on_screen(record: logging.LogRecord, verbose: bool) -> bool:
    """-v: every message of crossbar-hil's own, and the libraries' warnings. Without -v: the
    warnings, except errors of the core and the drivers, which the command reports itself
    in its one line or its summary (--log-file keeps them)."""
    package = record.name.split(".")[0]
    if verbose:
        return package in OWN_LOGGERS or record.levelno >= logging.WARNING
    if package in REPORTED_LOGGERS:
        return record.levelno >= logging.CRITICAL
    return record.levelno >= logging.WARNING


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hil`` console script; returns the exit status."""
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:  # Nothing else to build for it.
        print(f"hil (crossbar-hil) {__version__}")
        return 0
    args = build_parser().parse_args(argv)
    try:
        configure_logging(args.verbose, args.log_file)
    except OSError as e:
        print(f"hil: cannot open --log-file {args.log_file}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt as e:  # The third stop signal (or Ctrl-C before any handler was set).
        from crossbar_hil.api.cli.stopping import EXIT_STOPPED

        text = (
            f"{e}; the outputs were NOT confirmed at 0 V: check the instrument" if str(e) else "interrupted"
        )
        print(f"hil: {text}", file=sys.stderr)
        return EXIT_STOPPED
    except BrokenPipeError:  # Output piped into e.g. `head`, which has closed.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``hil`` command line: one module per subcommand, each with ``add_parser``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from api.cli import characterize, emulate, instruments, sweep, train

# Each module here adds one subcommand: add_parser(subparsers) sets func=run(args) -> int.
SUBCOMMANDS = [train, characterize, instruments, emulate, sweep]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by tests and --help)."""
    parser = argparse.ArgumentParser(
        prog="hil", description="In-situ training of memristor crossbars, hardware in the loop."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hil`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # Output piped into e.g. `head`, which has closed.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

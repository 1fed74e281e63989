"""Command-line options shared by the seed-sweep scripts in this folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from crossbar_hil.resources import trace_from_env


def sweep_parser(doc: str) -> argparse.ArgumentParser:
    """--seeds, --trace (default $HIL_TRACE), --builtin, --beta."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200, help="Device-variation seeds 0..N-1.")
    ap.add_argument("--trace", type=Path, default=trace_from_env(), help="Trace (default $HIL_TRACE).")
    ap.add_argument("--builtin", action="store_true", help="Ignore HIL_TRACE: use the built-in device.")
    ap.add_argument("--beta", type=float, default=6e6, help="Activation gain (1/A).")
    return ap


def chosen_trace(args: argparse.Namespace) -> Path | None:
    """The trace to replay, or None for the built-in device."""
    return None if args.builtin else args.trace

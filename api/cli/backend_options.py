"""Backend options shared by the subcommands that talk to a crossbar.

``--backend`` and ``--param KEY=VALUE`` pick any registered backend;
``--resource`` / ``--port`` are shortcuts for the VISA and serial drivers;
``--trace`` / ``--builtin`` / ``--seed`` / ``--k`` describe the emulator. The
trace defaults to ``$HIL_TRACE``, else the built-in device.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hil.resources import TRACE_ENV, trace_from_env
from hil.seam import CrossbarBackend
from hil.seam.errors import HilError, describe_validation_error
from hil.seam.registry import create_backend


def add_emulator_options(p: argparse.ArgumentParser) -> None:
    """--trace, --builtin, --seed, --k."""
    p.add_argument("--trace", type=Path, help=f"Trace file to replay (default: ${TRACE_ENV}).")
    p.add_argument("--builtin", action="store_true", help="Use the built-in device even if a trace is set.")
    p.add_argument("--seed", type=int, help="Seed of the emulator's random draws (default 0).")
    p.add_argument("--k", type=float, dest="scale_k", help="Emulator scale factor K.")


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """--backend, --param, --resource, --port and the emulator options."""
    p.add_argument("--backend", help="Registered backend name (default: emulator).")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Backend parameter (repeatable); VALUE is parsed as JSON when it can be.",
    )
    p.add_argument("--resource", help="VISA resource string (with --backend visa).")
    p.add_argument("--port", help="Serial port or pyserial URL (with --backend serial).")
    add_emulator_options(p)


def parse_value(value: str) -> Any:
    """A --param value: JSON when it parses (numbers, true, lists), else the text itself."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def backend_params(
    args: argparse.Namespace, name: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Backend parameters from the options, on top of ``params`` (e.g. from a config file)."""
    out = dict(params or {})
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        out[key] = parse_value(value)
    for key in ("resource", "port"):
        if getattr(args, key):
            out[key] = getattr(args, key)
    if name == "emulator":
        out.update(emulator_params(args, out))
    return out


def emulator_params(args: argparse.Namespace, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Emulator parameters: seed, K and the trace (option, config, $HIL_TRACE, or none = built-in)."""
    out = dict(params or {})
    if args.seed is not None:
        out["seed"] = args.seed
    if args.scale_k is not None:
        out["scale_k"] = args.scale_k
    if args.builtin:
        out.pop("trace", None)
        return out
    trace = args.trace or (Path(out["trace"]) if out.get("trace") else trace_from_env())
    if trace is not None:
        if not trace.is_file():
            raise FileNotFoundError(f"trace file not found: {trace}")
        out["trace"] = str(trace)
    return out


def open_backend(prog: str, name: str, params: dict[str, Any]) -> CrossbarBackend | int:
    """The backend, or the exit status after telling the user why it could not be opened.

    2 for bad parameters (named, with the allowed range), 3 when the instrument
    cannot be reached or answers wrongly.
    """
    try:
        return create_backend(name, params)
    except (ValueError, FileNotFoundError) as e:
        return bad_input(prog, e)
    except (HilError, OSError) as e:
        print(f"{prog}: cannot connect to {name!r} backend: {type(e).__name__}: {e}", file=sys.stderr)
        return 3


def bad_input(prog: str, error: Exception) -> int:
    """Tell the user what was wrong with their input (one line per field); returns exit status 2."""
    text = describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
    print(f"{prog}: {text}", file=sys.stderr)
    return 2

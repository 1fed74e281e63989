"""Backend options shared by the subcommands that talk to a crossbar.

``--backend`` and ``--param KEY=VALUE`` pick any registered backend;
``--resource`` / ``--port`` are shortcuts for the VISA and serial drivers (each
implies its backend); ``--trace`` / ``--builtin`` / ``--seed`` / ``--k`` describe
the emulator and are refused with any other backend. The trace defaults to
``$HIL_TRACE``, else the built-in device.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from crossbar_hil.api.cli.model_options import add_setting_options
from crossbar_hil.api.cli.stopping import EXIT_BAD_INPUT, EXIT_FAULT, EXIT_STOPPED, SignalStop
from crossbar_hil.resources import TRACE_ENV, trace_from_env
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.seam.errors import HilError, RunStopped, describe_validation_error
from crossbar_hil.seam.registry import available_backends, backend_factory, create_backend
from crossbar_hil.settings import settings

EMULATOR_OPTIONS = {"trace": "--trace", "builtin": "--builtin", "seed": "--seed", "scale_k": "--k"}
"""Options that describe the emulator (dest -> option)."""

EMULATOR_FIELDS = ("seed", "scale_k")
"""EmulatorConfig fields with an option of their own (the others go by --param)."""

SHORTCUTS = {"resource": "visa", "port": "serial"}
"""Options that belong to one backend (dest -> backend name); each implies its backend."""


def add_emulator_options(p: argparse.ArgumentParser) -> None:
    """--trace, --builtin, --seed, --k."""
    p.add_argument(
        "--trace", type=Path, help=f"Trace file to replay (default: ${TRACE_ENV}, else the built-in device)."
    )
    p.add_argument("--builtin", action="store_true", help="Use the built-in device even if a trace is set.")
    from crossbar_hil.emulator.config import EmulatorConfig

    fields = [s for s in settings(EmulatorConfig) if s.name in EMULATOR_FIELDS]
    add_setting_options(p, fields, {"scale_k": ("--k",)})


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """--backend, --param, --resource, --port and the emulator options."""
    p.add_argument(
        "--backend",
        help="Registered backend name (default: emulator; visa with --resource, serial with --port).",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Backend parameter (repeatable); VALUE is parsed as JSON when it can be. "
        "The parameters of each backend are listed below.",
    )
    p.add_argument("--resource", help="VISA resource string, e.g. TCPIP::host::5025::SOCKET (implies visa).")
    p.add_argument("--port", help="Serial port or pyserial URL, e.g. /dev/ttyUSB0 (implies serial).")
    add_emulator_options(p)
    p.epilog = backend_params_help()
    p.formatter_class = argparse.RawDescriptionHelpFormatter


def backend_params_help() -> str:
    """The parameters ``--param`` accepts, per registered backend, with their defaults."""
    lines = ["backend parameters (--param KEY=VALUE):"]
    for name in sorted(available_backends()):
        try:
            model = getattr(getattr(backend_factory(name), "__self__", None), "params_model", None)
        except Exception:  # A broken third-party backend must not break --help.
            model = None
        if isinstance(model, type) and issubclass(model, BaseModel):
            text = f"{name}: {describe_fields(model)}"
            lines.append(textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


def describe_fields(model: type[BaseModel]) -> str:
    """``key=default`` (or ``key (required)``) for every field of ``model``."""
    out = []
    for key, field in model.model_fields.items():
        if field.is_required():
            out.append(f"{key} (required)")
        elif field.default_factory is not None:
            out.append(f"{key}={{...}}")
        else:
            out.append(
                f"{key}={field.default!r}" if isinstance(field.default, str) else f"{key}={field.default}"
            )
    return ", ".join(out)


def parse_value(value: str) -> Any:
    """A --param value: JSON when it parses (numbers, true, lists), else the text itself."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def backend_name(args: argparse.Namespace, configured: str | None = None) -> str:
    """The backend the options select: --backend, else the one --resource/--port implies,
    else ``configured`` (e.g. from a config file), else the emulator.

    Raises ValueError for an option that belongs to another backend than the one chosen.
    """
    implied = {SHORTCUTS[k] for k in SHORTCUTS if getattr(args, k, None)}
    if len(implied) > 1:
        raise ValueError("--resource (visa) and --port (serial) name two backends; give one of them")
    name = args.backend or next(iter(implied), None) or configured or "emulator"
    for dest, owner in SHORTCUTS.items():
        if getattr(args, dest, None) and name != owner:
            raise ValueError(
                f"--{dest} belongs to --backend {owner}; the backend here is {name!r}: drop one of them"
            )
    if name != "emulator":
        given = [
            opt for dest, opt in EMULATOR_OPTIONS.items() if getattr(args, dest, None) not in (None, False)
        ]
        if given:
            one = len(given) == 1
            raise ValueError(
                f"{', '.join(given)} {'describes' if one else 'describe'} the emulator "
                f"(--backend emulator) and would be ignored by the {name!r} backend: drop "
                f"{'it' if one else 'them'}, or use --param for the {name} backend's own parameters"
            )
    return name


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
    for key in SHORTCUTS:
        if getattr(args, key, None):
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
        if trace.is_dir():
            raise ValueError(f"trace {trace} is a directory; expected a .dat or .csv trace file")
        if not trace.is_file():
            raise FileNotFoundError(f"trace file not found: {trace}")
        out["trace"] = str(trace)
    return out


def open_backend(
    prog: str, name: str, params: dict[str, Any], signals: SignalStop | None = None
) -> CrossbarBackend | int:
    """The backend, or the exit status after telling the user, in one line, why it could not be opened.

    2 for bad parameters (named, with the allowed range), 3 when the instrument
    cannot be reached or answers wrongly, 4 when a stop signal came before or
    during the handshake (``signals`` enters its "connecting" phase here).
    """
    if signals is not None:
        try:
            signals.phase("connecting to the instrument", immediate=True)
        except RunStopped:
            return EXIT_STOPPED  # Stopped before connecting: nothing was sent.
    try:
        return create_backend(name, params)
    except RunStopped as e:
        print(f"{prog}: {e}; nothing was sent but the handshake", file=sys.stderr)
        return EXIT_STOPPED
    except (ValueError, FileNotFoundError) as e:
        return bad_input(prog, e)
    except (HilError, OSError) as e:
        if signals is not None and signals.stop.is_set:
            # The stop interrupted the handshake and a driver reported that as a link error
            # (the RunStopped raised in it became its cause): the user stopped it, say so.
            print(
                f"{prog}: {signals.stop.reason} while connecting to the instrument; "
                "nothing was sent but the handshake",
                file=sys.stderr,
            )
            return EXIT_STOPPED
        text = str(e)
        if not text.startswith("cannot "):
            text = f"cannot connect to the {name!r} backend: {text}"
        print(f"{prog}: {text}", file=sys.stderr)
        return EXIT_FAULT


def bad_input(prog: str, error: Exception) -> int:
    """Tell the user what was wrong with their input (one line per field); returns exit status 2."""
    text = describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
    print(f"{prog}: {text}", file=sys.stderr)
    return EXIT_BAD_INPUT

"""``hil instruments``: the VISA resources and serial ports this machine can see."""

from __future__ import annotations

import argparse
import json

from crossbar_hil.drivers.discovery import discover
from crossbar_hil.seam.registry import available_backends


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil instruments``."""
    p = sub.add_parser(
        "instruments",
        help="List visible VISA resources and serial ports.",
        description=(
            "List VISA resources (pyvisa-py by default) and serial ports. Raw TCP sockets "
            "(TCPIP::host::port::SOCKET) cannot be discovered: pass them with --resource."
        ),
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="Ask each its identity: open it, write the one line *IDN?, read one reply, "
        "close. Nothing else is sent (no ABOR, no configuration). Opening a serial "
        "port may toggle DTR/RTS, which resets some boards.",
    )
    p.add_argument(
        "--timeout", type=float, default=1.0, metavar="S", help="Reply timeout of --probe (s, default 1)."
    )
    p.add_argument("--visa-library", default="@py", help="PyVISA library spec (default @py).")
    p.add_argument("--no-visa", action="store_true", help="Do not search VISA resources.")
    p.add_argument("--no-serial", action="store_true", help="Do not search serial ports.")
    p.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``hil instruments``; exit status 0 (also when nothing is found)."""
    result = discover(
        visa=not args.no_visa,
        serial=not args.no_serial,
        visa_library=args.visa_library,
        probe_timeout_s=args.timeout if args.probe else None,
    )
    if args.json:
        print(json.dumps({**result.to_dict(), "backends": available_backends()}, indent=2))
        return 0
    if not result.found:
        print("no VISA resources or serial ports found")
    for f in result.found:
        option = "--resource" if f.backend == "visa" else "--port"
        line = f"{f.backend:<7}{f.address:<36}{f.description}"
        print(line.rstrip())
        print(f"         use: --backend {f.backend} {option} {f.address}")
        if f.identity is not None:
            print(f"         identity: {f.identity}")
        elif f.probe_error is not None:
            print(f"         no answer: {f.probe_error}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"registered backends: {', '.join(sorted(available_backends()))}")
    return 0

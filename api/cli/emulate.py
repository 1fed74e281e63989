"""``hil emulate``: serve an emulated crossbar over the wire protocol (TCP or a pty).

A lab user points a driver (or a terminal) at it as if it were the physical
controller: ``hil emulate --tcp 127.0.0.1:5025`` then
``--backend visa --resource TCPIP::127.0.0.1::5025::SOCKET``; or ``hil emulate --pty``
and the printed ``/dev/pts/N``. Serves until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from contextlib import suppress
from typing import Any, Literal, TextIO

from crossbar_hil.api.cli.backend_options import add_emulator_options, bad_input, emulator_params
from crossbar_hil.api.cli.model_options import add_setting_options, setting_values
from crossbar_hil.api.cli.stopping import EXIT_FAULT
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import (
    InstrumentServer,
    ServerOptions,
    running_server,
)
from crossbar_hil.protocol import PROTOCOL_VERSION
from crossbar_hil.resources import TRACE_ENV
from crossbar_hil.settings import settings

DEFAULT_TCP = ("127.0.0.1", 5025)

SERVED_FAULTS = ("reply_delay_s",)
"""FaultPlan fields ``hil emulate`` offers as options (the others are for tests)."""


def tcp_address(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (port 0 = any free port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:5025, got {text!r}")
    return host.strip("[]"), int(port)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil emulate``."""
    p = sub.add_parser(
        "emulate",
        help="Serve an emulated crossbar over the wire protocol (TCP or pty).",
        description=(
            f"Instrument server speaking crossbar protocol {PROTOCOL_VERSION} "
            "(hil/protocol/PROTOCOL.md) for an emulated crossbar. Without --trace "
            f"(and without {TRACE_ENV}) the emulator uses its built-in device model."
        ),
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--tcp",
        type=tcp_address,
        metavar="HOST:PORT",
        help=f"Listen on TCP (default {DEFAULT_TCP[0]}:{DEFAULT_TCP[1]}; port 0 = a free port).",
    )
    where.add_argument("--pty", action="store_true", help="Serve on a new pseudo-terminal.")
    add_emulator_options(p)
    server_fields = settings(ServerOptions, skip=("recent_lines",))
    fault_fields = [f for f in settings(FaultPlan) if f.name in SERVED_FAULTS]
    add_setting_options(
        p.add_argument_group("server (ServerOptions, FaultPlan)"), server_fields + fault_fields
    )
    p.set_defaults(func=run, server_fields=server_fields, fault_fields=fault_fields)


def emulator_config(args: argparse.Namespace) -> EmulatorConfig:
    """The emulator config the options describe."""
    return EmulatorConfig.model_validate(emulator_params(args))


def describe(server: InstrumentServer) -> str:
    """What a user needs to connect to ``server``."""
    lines = [f"crossbar-hil emulator, protocol {PROTOCOL_VERSION}: {server.crossbar.info.identity}"]
    if server.transport == "pty":
        lines.append(f"device:        {server.device_path}")
    lines += [f"VISA resource: {server.resource_string}", f"pyserial port: {server.serial_url}"]
    return "\n".join(lines)


def run(args: argparse.Namespace, *, stop: threading.Event | None = None, out: TextIO | None = None) -> int:
    """Serve until Ctrl-C, SIGTERM, SIGHUP or ``stop`` is set; returns the exit status:
    0 after serving, 2 for bad input, 3 when it cannot serve (e.g. the port is in use)."""
    out = out or sys.stdout
    stop = stop or threading.Event()
    try:
        faults = FaultPlan.model_validate(setting_values(args, args.fault_fields))
        options = ServerOptions.model_validate(setting_values(args, args.server_fields))
        crossbar = EmulatedCrossbar(emulator_config(args))
    except (ValueError, OSError) as exc:
        return bad_input("hil emulate", exc)
    host, port = args.tcp or DEFAULT_TCP
    transport: Literal["tcp", "pty"] = "pty" if args.pty else "tcp"
    # The handler only appends (no lock): one that set ``stop`` could wait forever for the lock of
    # the ``stop.wait`` it interrupted, in the same thread.
    signalled: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in {signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)}:
            previous[signum] = signal.signal(signum, lambda signum, _: signalled.append(signum))
    try:
        with (
            crossbar,
            running_server(
                crossbar=crossbar, transport=transport, host=host, port=port, faults=faults, options=options
            ) as server,
        ):
            print(describe(server), file=out)
            print("Serving; press Ctrl-C to stop.", file=out, flush=True)
            with suppress(KeyboardInterrupt):
                while not signalled and not stop.wait(0.1):
                    pass
            count = server.command_count
    except OSError as exc:
        where = f"{host}:{port}" if transport == "tcp" else "a pty"
        if exc.errno == errno.EADDRINUSE:
            why = (
                f"{where} is in use (another `hil emulate` or server?): "
                f"choose another port, e.g. --tcp {host}:0"
            )
        else:
            why = f"cannot serve on {where}: {exc.strerror or exc}"
        print(f"hil emulate: {why}", file=sys.stderr)
        return EXIT_FAULT
    finally:
        # Once stopped by a signal, more of the same burst are ignored: restored to the default,
        # one arriving while the process ends would kill it (exit -15, no summary).
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN if signalled else handler)
    print(f"stopped after {count} commands", file=out)
    return 0

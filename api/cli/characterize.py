"""``hil characterize``: record one device's response to N identical pulses as a ``.dat`` trace.

Through any registered backend: reset device (row, col), then N times: one
pulse of ``--amplitude`` V for ``--width`` s, one read of every conductance at
``--read-v`` V (``MEAS:ALL?`` on a protocol backend) keeping that device's. The
result is written in the instrument ``.dat`` format, so the emulator can replay
it: ``EmulatorConfig(trace=path)`` or ``hil train --trace path``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from api.cli.backend_options import add_backend_options, backend_params, bad_input, open_backend
from hil.procedures.characterize import Progress, record_trace
from hil.seam.errors import HilError, LimitError
from hil.trace_file import write_dat


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil characterize``."""
    p = sub.add_parser(
        "characterize",
        help="Record one device's pulse response as a .dat trace the emulator can replay.",
        description=__doc__.split("\n", 2)[2] if __doc__ else None,
    )
    add_backend_options(p)
    p.add_argument("--row", type=int, default=0, help="Row of the device (default 0).")
    p.add_argument("--col", type=int, default=0, help="Column of the device (default 0).")
    p.add_argument("--pulses", type=int, default=50, help="Number of pulses (default 50).")
    p.add_argument("--amplitude", type=float, default=2.0, help="Pulse amplitude (V, default 2).")
    p.add_argument("--width", type=float, default=1e-3, help="Pulse width (s, default 1e-3).")
    p.add_argument("--read-v", type=float, default=0.05, help="Read voltage (V, default 0.05).")
    p.add_argument(
        "--reset-v",
        type=float,
        default=-2.0,
        help="Reset amplitude to note in the header (V, default -2); the device's own is used.",
    )
    p.add_argument(
        "--reset-width", type=float, default=1.0, help="Reset width to note in the header (s, default 1)."
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="The .dat file to write.")
    p.add_argument("-q", "--quiet", action="store_true", help="No progress display.")
    p.set_defaults(func=run)


def progress_printer(stream: TextIO | None = None) -> Progress:
    """A progress display on ``stream`` (default stderr): one self-overwriting line on a
    terminal, a line per pulse otherwise."""
    out = stream or sys.stderr
    tty = out.isatty()

    def show(done: int, total: int, g_siemens: float) -> None:
        width = 24
        bar = "#" * (width * done // total) + "." * (width - width * done // total)
        text = f"[{bar}] pulse {done:>4}/{total}  G = {g_siemens:.6e} S"
        out.write(("\r" + text + ("\n" if done == total else "")) if tty else text + "\n")
        out.flush()

    return show


def run(args: argparse.Namespace) -> int:
    """Run ``hil characterize``; exit status 0, 2 for bad input, 3 for an instrument fault."""
    name = args.backend or "emulator"
    try:
        params = backend_params(args, name)
    except (ValueError, FileNotFoundError) as e:
        return bad_input("hil characterize", e)
    backend = open_backend("hil characterize", name, params)
    if isinstance(backend, int):
        return backend
    with backend:
        try:
            trace = record_trace(
                backend,
                args.row,
                args.col,
                args.pulses,
                args.amplitude,
                args.width,
                args.read_v,
                reset_v=args.reset_v,
                reset_width_s=args.reset_width,
                progress=None if args.quiet else progress_printer(),
            )
        except LimitError as e:
            return bad_input("hil characterize", e)
        except (HilError, ValueError) as e:
            print(f"hil characterize: {type(e).__name__}: {e}", file=sys.stderr)
            return 3
    path = write_dat(args.out, trace)
    g = trace.conductances_siemens
    print(
        f"{trace.source}: {trace.n_pulses} pulses of {args.amplitude:g} V / {args.width:g} s, "
        f"G {g[0]:.6e} S -> {g[-1]:.6e} S (x{g[-1] / g[0]:.3f}); written to {path}"
    )
    return 0

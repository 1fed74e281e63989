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

from crossbar_hil.api.cli.backend_options import (
    add_backend_options,
    backend_name,
    backend_params,
    bad_input,
    open_backend,
)
from crossbar_hil.api.cli.calibrations import add_store_option, export_files
from crossbar_hil.api.cli.model_options import add_setting_options, setting_values
from crossbar_hil.api.cli.stopping import EXIT_FAULT, EXIT_OK, EXIT_STOPPED, SignalStop, instrument_wait
from crossbar_hil.procedures.calibrate import calibrate
from crossbar_hil.procedures.characterize import (
    CharacterizeSettings,
    Progress,
    RecordingInterrupted,
    record_trace,
)
from crossbar_hil.procedures.outputs import check_output_file
from crossbar_hil.runs.calibrations import Calibrations
from crossbar_hil.runs.store import RunStore, default_path
from crossbar_hil.seam.errors import HilError, LimitError, RunStopped
from crossbar_hil.settings import settings
from crossbar_hil.trace_file import Trace, write_dat


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil characterize``."""
    p = sub.add_parser(
        "characterize",
        help="Record one device's pulse response as a .dat trace the emulator can replay.",
        description=__doc__.split("\n", 2)[2] if __doc__ else None,
    )
    add_backend_options(p)
    add_setting_options(p.add_argument_group("what to send"), SETTINGS, OPTION_ALIASES)
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        help="The .dat file to write (one device); with --all or --devices, a folder for the "
        "calibration's files (optional: the calibration is kept in the run store).",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="Calibrate every device in one pass (reset, --pulses pulses with a read after each) and keep "
        "the calibration in the run store: hil train on this instrument then uses it by default.",
    )
    p.add_argument(
        "--devices",
        metavar="R,C[;R,C...]",
        help="Calibrate these devices only (as --all), e.g. '0,0;0,1'.",
    )
    add_store_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="No progress display.")
    p.set_defaults(func=run)


SETTINGS = settings(CharacterizeSettings)
"""The options of the pulse and read settings, from :class:`CharacterizeSettings`."""
OPTION_ALIASES = {"n_pulses": ["--pulses"], "amplitude_v": ["--amplitude"]}
"""The short names these options had before they were built from the model."""


def characterize_settings(args: argparse.Namespace) -> CharacterizeSettings:
    """The settings the options give, validated by the model (errors name the field)."""
    return CharacterizeSettings.model_validate(setting_values(args, SETTINGS))


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
    """Run ``hil characterize``; exit status 0, 2 for bad input, 3 for an instrument fault,
    4 when stopped (Ctrl-C, SIGTERM, SIGHUP). A stop or a fault part way writes the partial
    trace, marked partial (``Pulses Requested`` in its header)."""
    prog = "hil characterize"
    if args.all or args.devices:
        return run_calibration(args)
    if args.out is None:
        return bad_input(prog, ValueError("-o/--out: the .dat file to write is required for one device"))
    try:
        s = characterize_settings(args)
        name = backend_name(args)
        params = backend_params(args, name)
        check_output_file(args.out, "-o/--out")
    except (ValueError, FileNotFoundError) as e:
        return bad_input(prog, e)
    with SignalStop(prog) as signals:
        backend = open_backend(prog, name, params, signals)
        if isinstance(backend, int):
            return backend
        signals.phase("recording", immediate=False, waiting=instrument_wait(backend))
        with backend:
            try:
                trace = record_trace(
                    backend,
                    s.row,
                    s.col,
                    s.n_pulses,
                    s.amplitude_v,
                    s.width_s,
                    s.read_v,
                    reset_v=s.reset_v,
                    reset_width_s=s.reset_width_s,
                    progress=None if args.quiet else progress_printer(),
                    stop=signals.stop,
                )
            except LimitError as e:
                return bad_input(prog, e)
            except RunStopped as e:
                print(f"{prog}: {e} before the first pulse; nothing recorded", file=sys.stderr)
                return EXIT_STOPPED
            except KeyboardInterrupt as e:  # A second stop signal.
                if getattr(e, "partial_trace", None) is None:
                    raise
                print(f"{prog}: {e}", file=sys.stderr)
                trace, status = e.partial_trace, EXIT_STOPPED  # type: ignore[attr-defined]
            except RecordingInterrupted as e:
                status = EXIT_STOPPED if e.stopped else EXIT_FAULT
                if e.trace is None:
                    print(f"{prog}: {e}; nothing recorded", file=sys.stderr)
                    return status
                print(f"{prog}: {e}", file=sys.stderr)
                trace = e.trace
            except (HilError, ValueError) as e:
                print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
                return EXIT_FAULT
            else:
                status = EXIT_OK
    path = write_dat(args.out, trace)
    print(describe(trace, s.amplitude_v, s.width_s, path))
    return status


def describe(trace: Trace, amplitude_v: float, width_s: float, path: Path) -> str:
    """One line on what was recorded and where it went."""
    g = trace.conductances_siemens
    requested = trace.protocol.pulses_requested if trace.protocol is not None else None
    what = f"PARTIAL trace, {trace.n_pulses} of {requested}" if trace.partial else f"{trace.n_pulses}"
    return (
        f"{trace.source}: {what} pulses of {amplitude_v:g} V / {width_s:g} s, "
        f"G {g[0]:.6e} S -> {g[-1]:.6e} S (x{g[-1] / g[0]:.3f}); written to {path}"
    )


def parse_devices(text: str) -> list[tuple[int, int]]:
    """``'0,0;1,2'`` -> [(0, 0), (1, 2)]; ValueError naming --devices otherwise."""
    try:
        pairs = [tuple(int(x) for x in part.split(",")) for part in text.split(";") if part.strip()]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ValueError(f"--devices={text!r}: give row,col pairs separated by ';', e.g. '0,0;0,1'")
    return [(p[0], p[1]) for p in pairs]


def run_calibration(args: argparse.Namespace) -> int:
    """``hil characterize --all | --devices``: calibrate, keep it in the run store, export if asked."""
    prog = "hil characterize"
    try:
        s = characterize_settings(args)
        name = backend_name(args)
        params = backend_params(args, name)
        devices = parse_devices(args.devices) if args.devices else None
    except (ValueError, FileNotFoundError) as e:
        return bad_input(prog, e)
    with SignalStop(prog) as signals:
        backend = open_backend(prog, name, params, signals)
        if isinstance(backend, int):
            return backend
        signals.phase("calibrating", immediate=False, waiting=instrument_wait(backend))
        with backend:
            try:
                cal = calibrate(
                    backend,
                    s.n_pulses,
                    s.amplitude_v,
                    s.width_s,
                    s.read_v,
                    devices=devices,
                    reset_time_s=s.reset_width_s,
                    stop=signals.stop,
                )
            except LimitError as e:
                return bad_input(prog, e)
            except RunStopped as e:
                print(f"{prog}: {e}; no calibration kept", file=sys.stderr)
                return EXIT_STOPPED
            except (HilError, ValueError) as e:
                print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
                return EXIT_FAULT
    store = RunStore(args.database or default_path())
    try:
        cal_id = Calibrations(store).add(cal)
    finally:
        store.close()
    print(
        f"{cal.identity}: calibrated {len(cal.devices)} devices with {cal.n_pulses} pulses of "
        f"{cal.pulse_v:g} V / {cal.pulse_width_s:g} s ({cal.instrument_time_s:.1f} s of instrument time); "
        f"kept as calibration {cal_id} in {store.path}"
    )
    if args.out is not None:
        files = export_files(cal, args.out)
        print(f"exported {len(files)} files to {args.out}")
    return EXIT_OK

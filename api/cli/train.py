"""``hil train``: one in-situ training run from the command line, with progress and a summary.

Thin: parse the options, call :func:`crossbar_hil.procedures.training.run_training`, print.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from crossbar_hil.api.cli.backend_options import (
    add_backend_options,
    backend_name,
    backend_params,
    bad_input,
    open_backend,
)
from crossbar_hil.api.cli.model_options import add_setting_options, setting_values
from crossbar_hil.api.cli.stopping import (
    EXIT_FAULT,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_STOPPED,
    SignalStop,
    exit_status,
    instrument_wait,
)
from crossbar_hil.json_files import InputFileError, read_json_object
from crossbar_hil.procedures.training import (
    CalibrationLookup,
    RunOutputs,
    TrainingRun,
    run_training,
    save_plots,
    what_to_try,
)
from crossbar_hil.resources import TRACE_ENV
from crossbar_hil.runs.calibrations import Calibrations
from crossbar_hil.runs.errors import InvalidRun
from crossbar_hil.runs.local import BUSY_TIMEOUT_S, STORE_FAILURES, LocalRun
from crossbar_hil.runs.store import STORE_ENV, RunStore, default_path
from crossbar_hil.runs.worker import check_fits
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.seam.backend import outputs_confirmed_at_0v
from crossbar_hil.seam.errors import RunStopped
from crossbar_hil.settings import Setting, settings
from crossbar_hil.trace_file import load_trace
from crossbar_hil.training.config import DEFAULT_PRESET, PRESETS, RunConfig, TrainingConfig
from crossbar_hil.training.history import EpochRecord, Evaluation, Outcome, TrainingResult
from crossbar_hil.training.observers import TrainingObserver
from crossbar_hil.training.task import Task

TRAINING_SKIP = ("curve_source",)
"""TrainingConfig fields without an option of their own: --device-curve sets them (with the curve)."""

OPTION_ALIASES = {"start_state": ("--start",)}
"""Older option names kept working, by field."""


def training_settings(model: type[TrainingConfig] = TrainingConfig) -> list[Setting]:
    """The options of ``hil train`` that set ``model``'s fields, with the defaults it uses without
    them (the core's default run config's)."""
    return settings(model, RunConfig().training.model_dump(), skip=TRAINING_SKIP)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], model: type[TrainingConfig] = TrainingConfig
) -> None:
    """Register ``hil train``; its training options are ``model``'s fields."""
    p = sub.add_parser(
        "train",
        help="Train the perceptron in situ (emulator by default).",
        description=(
            "In-situ training. Default: the recommended settings (gain calibrated from the margin "
            "the devices can reach, the planned rule, with device curves learned in situ unless "
            "--device-curve gives them, the same on the emulator and on hardware); --preset "
            "reference: the public "
            f"reference's. Without --trace (and without {TRACE_ENV}) the emulator uses its "
            "built-in device model.\n"
            "Exit status: 0 the run ended by itself (converged or not), 2 bad input (nothing sent), "
            "3 instrument fault, 4 stopped (Ctrl-C, SIGTERM, SIGHUP; results written)."
        ),
    )
    p.add_argument(
        "--config", type=Path, help="RunConfig JSON file (or a run's JSON result); options override it."
    )
    add_backend_options(p)
    p.add_argument("--task", type=Path, help="Task JSON file (default: the reference 4-bit task).")
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help=f"Start from named settings (default: the config file's, else {DEFAULT_PRESET!r}): "
        "'recommended' or 'reference' (the public reference "
        "implementation: beta 6e6, bands and error targets +-0.8, every pattern in the update, "
        "Manhattan, 50 epochs). The config file's training section and the options below override it.",
    )
    fields = training_settings(model)
    group = p.add_argument_group("training settings (TrainingConfig; the config file's are overridden)")
    add_setting_options(group, fields, OPTION_ALIASES)
    p.add_argument(
        "--device-curve",
        metavar="TRACE|oracle|learned|none",
        help="Device curve for the feasibility check, the calibrated gain and the planned rule: a "
        "characterised trace (.dat or one-column .csv, e.g. from hil characterize) for every device; "
        "'learned' (learned in situ from read-back); 'oracle' (the emulator's own exact curve: emulator "
        "runs only, no real instrument has one); 'none'. Default: learned in situ (on the emulator and "
        "on hardware alike).",
    )
    p.add_argument(
        "--curve-scale",
        type=float,
        default=1.0,
        help="Factor from the curve file's conductances to the crossbar's (e.g. the emulator's K; "
        "default 1).",
    )
    p.add_argument("--plots", type=Path, metavar="DIR", help="Save PNG plots into DIR (after the JSON).")
    p.add_argument(
        "--json",
        metavar="PATH",
        help="Write the result as JSON to PATH ('-' = stdout), and the per-epoch history as CSV "
        "next to it (PATH with .csv).",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="No progress display.")
    p.add_argument(
        "--database",
        type=Path,
        default=None,
        help=f"Run store the run is recorded in, as hil serve records its runs (default ${STORE_ENV} or "
        f"{default_path()}); hil runs and the service list it. A store that cannot be used (busy, "
        "damaged, unwritable) is said in one line; the training goes on and its files are written.",
    )
    p.add_argument(
        "--no-record", action="store_true", help="Do not record the run in the run store (files only)."
    )
    p.set_defaults(func=run, training_fields=fields)


def load_config_file(path: Path) -> dict[str, Any]:
    """A RunConfig document from ``path``; a run's JSON result gives the config it ran with."""
    data = read_json_object(path, "--config")
    if "schema_version" in data and isinstance(data.get("config"), dict):
        print(f"hil train: --config {path} is a run result; using the config it ran with", file=sys.stderr)
        return dict(data["config"])
    return data


def build_config(args: argparse.Namespace) -> RunConfig:
    """The run config from --config and the options that override it (validated)."""
    base: dict[str, Any] = {} if args.config is None else load_config_file(args.config)
    for key in ("backend", "training"):
        if not isinstance(base.setdefault(key, {}), dict):
            raise InputFileError(f"--config {args.config}: {key!r} must be a JSON object, got {base[key]!r}")
    backend = base["backend"]
    if not isinstance(backend.get("params", {}), dict):
        raise InputFileError(f"--config {args.config}: backend.params must be a JSON object")
    backend["name"] = backend_name(args, backend.get("name"))
    backend["params"] = backend_params(args, backend["name"], backend.get("params"))
    if args.preset is not None:
        base["preset"] = args.preset
    training = base["training"]
    if args.device_curve in CURVE_SOURCES:
        training["curve_source"] = args.device_curve
    elif args.device_curve is not None:
        training["device_curve_siemens"] = device_curve(Path(args.device_curve), args.curve_scale)
        training["device_curve_label"] = f"file {args.device_curve}"
    training.update(setting_values(args, args.training_fields))
    if args.task is not None:
        base["task"] = Task.load(args.task).model_dump()
    return RunConfig.model_validate(base)


@contextmanager
def stored_calibrations(
    path: Path | None, local: LocalRun | None = None
) -> Iterator[CalibrationLookup | None]:
    """The newest-calibration lookup of the run store: the one the run is recorded in (``local``),
    else the file at ``path`` when it exists and can be read (``hil characterize --all`` creates
    it); None otherwise (nothing is created; a store that cannot be used was said already)."""
    if local is not None:
        yield local.calibrations()
        return
    store = None
    if path is not None and path.is_file():
        with suppress(*STORE_FAILURES):
            store = RunStore(path, busy_timeout_s=BUSY_TIMEOUT_S)
    try:
        yield None if store is None else Calibrations(store).newest
    finally:
        if store is not None:
            store.close()


CURVE_SOURCES = ("oracle", "learned", "none")
"""Words --device-curve takes instead of a file (``TrainingConfig.curve_source``)."""


def device_curve(path: Path, scale: float) -> list[float]:
    """A curve file's conductances (S) times ``scale``, as gained from its first point."""
    if not path.is_file():
        raise FileNotFoundError(f"--device-curve: file not found: {path}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"--curve-scale={scale}: must be a positive number")
    g = load_trace(path).conductances_siemens * scale
    return (g - g[0]).tolist()


def before_training(result: TrainingResult) -> str:
    """What the check before training found: notes, the gain, the feasibility verdict."""
    lines = list(result.notes)
    if result.feasibility is not None:
        verdict = "feasible" if result.feasibility.feasible else "NOT feasible"
        lines.append(f"feasibility at beta = {result.beta:.4g} 1/A: {verdict}")
        lines += ["  " + line for line in result.feasibility.explain().splitlines()]
    return "\n".join(lines)


def outputs_of(args: argparse.Namespace) -> RunOutputs:
    """Where the options ask the results to go (JSON on stdout is printed, not written)."""
    path = None if args.json in (None, "-") else Path(args.json)
    return RunOutputs.beside_json(path, args.plots)


def files_of(args: argparse.Namespace, outputs: RunOutputs) -> list[str]:
    """The files (and stdout) the run's history goes to besides the run store."""
    files = [str(p) for p in (outputs.json, outputs.csv) if p is not None]
    files += ["stdout"] if args.json == "-" else []
    return files + ([f"plots in {args.plots}"] if args.plots is not None else [])


class ProgressLine(TrainingObserver):
    """One self-overwriting status line per epoch on a terminal (a line per epoch otherwise).

    Counts what the summary counts: training patterns with every output in its band.
    """

    def __init__(self, max_epochs: int, stream: TextIO | None = None) -> None:
        self.max_epochs = max_epochs
        self.stream = stream or sys.stderr
        self._tty = self.stream.isatty()

    def on_epoch(self, record: EpochRecord) -> None:
        width = 24
        done = int(width * record.epoch / max(self.max_epochs, 1))
        bar = "#" * done + "." * (width - done)
        band = f"{record.patterns_in_band}/{record.n_patterns}"
        text = (
            f"[{bar}] epoch {record.epoch:>3}/{self.max_epochs}  patterns in band {band}"
            f"  error {record.error:.3f}  pulses {record.pulses:>2}"
        )
        self.stream.write(("\r" + text) if self._tty else text + "\n")
        self.stream.flush()

    def on_end(self, result: TrainingResult) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()


def instrument_use(result: TrainingResult) -> str:
    """One line: resets, read-verify pulses and the instrument time the run's pulses and resets took."""
    line = (
        f"instrument: {result.total_pulses} pulses ({result.total_verify_pulses} read-verify), "
        f"{result.total_resets} resets, {result.instrument_time_s:.3f} s of pulses and resets"
    )
    if result.probe_pulses or result.probe_resets:
        line += (
            f"; before epoch 0, to learn the device curves: {result.probe_pulses} pulses, "
            f"{result.probe_resets} resets, {result.probe_time_s:.3f} s"
        )
    return line


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 epoch", "20 epochs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


NO_END = "the process ended without recording its end"
"""Why a stored run's end (its outputs at 0 V) is not known: killed, or its recording lost."""


def summary(run: TrainingRun) -> str:
    """Human-readable end-of-run summary; an epoch count is epochs trained (epoch 0, the read
    before training, trains nothing), the same number ``hil runs`` and the service show."""
    result = run.result
    lines = [f"backend: {run.identity}"]
    if result.start_state is None:
        lines.append("start: not recorded")
    elif result.start_state == "reset":
        lines.append(f"start: {len(result.start_reset_devices)} devices reset before training")
    else:
        lines.append("start: devices as they were (not reset)")
    trained = f"{counted(result.epochs, 'epoch')} ({counted(result.total_pulses, 'pulse')})"
    if result.converged:
        lines.append(f"CONVERGED after {trained}")
    elif result.outcome in (Outcome.MAX_EPOCHS, Outcome.INFEASIBLE):
        why = (
            " (ended early: no reachable weights meet the bands)"
            if result.outcome is Outcome.INFEASIBLE
            else ""
        )
        lines.append(f"NOT converged after {trained}{why}")
    elif result.outcome is Outcome.STALLED:
        patience = run.config.training.patience
        lines.append(
            f"NOT converged: ended after {trained} because no device moved in the last "
            f"{counted(patience, 'epoch')} (patience {patience}): the pulsed devices look saturated "
            "(potentiation only); more epochs will not help"
        )
    else:
        lines.append(f"{result.outcome.upper()} at epoch {result.epochs}: {result.error_message}")
        if not result.end_recorded:  # Killed, or its recording lost: nothing is known of its end.
            lines.append(f"outputs at 0 V: not known ({NO_END}); check the instrument")
        elif outputs_confirmed_at_0v(result.error_message):
            lines.append("outputs: confirmed at 0 V (the instrument answered ABOR)")
        else:
            lines.append("outputs: NOT confirmed at 0 V - check the instrument before touching the device")
    if result.diagnosis is not None:
        lines.append(f"  likely reason: {result.diagnosis.replace('_', ' ')}")
        lines += ["    " + line for line in (result.diagnosis_detail or "").splitlines()]
    elif result.outcome is Outcome.MAX_EPOCHS and result.looks_saturated(run.config.training):
        lines.append(
            f"  no conductance moved in the last {result.stalled_epochs()} epochs although pulses were sent: "
            "the pulsed devices look saturated (potentiation only); more epochs will not help"
        )
    lines.append(instrument_use(result))
    for name, ev in (("train", result.train), ("test", result.test)):
        if ev is not None:
            lines += evaluation_lines(name, ev)
    if tips := what_to_try(run):
        lines.append("to try:")
        lines += [f"  - {tip}" for tip in tips]
    return "\n".join(lines)


def evaluation_lines(name: str, ev: Evaluation) -> list[str]:
    """How a set of patterns came out: by sign, and in band (the progress line's count)."""
    n = len(ev.patterns)
    in_band = int(ev.in_band.all(axis=1).sum()) if n else 0
    lines = [
        f"{name}: {ev.correct.sum()}/{n} patterns correct by sign ({ev.accuracy:.0%}), "
        f"{in_band}/{n} patterns in band ({ev.in_band_accuracy:.0%})"
    ]
    for pat, tgt, f, ok in zip(ev.patterns, ev.targets, ev.activations, ev.correct, strict=True):
        outs = " ".join(f"{x:+.3f}" for x in f)
        lines.append(f"  {pat} -> {''.join(map(str, tgt))}  f = {outs}  {'ok' if ok else 'WRONG'}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Run ``hil train``; exit status 0 when the run ended by itself (converged or not: see the
    summary or --json), 2 for bad input, 3 for a fault (or an instrument another run holds), 4 for
    a stop (Ctrl-C, SIGTERM, SIGHUP)."""
    prog = "hil train"
    try:
        config = build_config(args)
        outputs = outputs_of(args)
        outputs.check()
    except (ValueError, FileNotFoundError) as e:
        return bad_input(prog, e)
    database = args.database or default_path()
    with SignalStop(prog) as signals:
        try:
            local = (
                None
                if args.no_record
                else LocalRun.open(database, config, signals.stop, _warner(prog), files_of(args, outputs))
            )
        except RunStopped:
            return EXIT_STOPPED  # Stopped while opening the store: nothing was sent.
        try:
            return train(prog, args, config, outputs, signals, local, database)
        finally:
            if local is not None:
                local.close()


def train(
    prog: str,
    args: argparse.Namespace,
    config: RunConfig,
    outputs: RunOutputs,
    signals: SignalStop,
    local: LocalRun | None,
    database: Path,
) -> int:
    """Open the instrument, train, present; recorded in the run store through ``local`` (None: not)."""
    if local is not None and (refused := local.reserve()) is not None:
        print(f"{prog}: {refused}", file=sys.stderr)
        return EXIT_FAULT  # Nothing was sent: the instrument was not opened.
    backend = open_backend(prog, config.backend.name, config.backend.params, signals)
    if isinstance(backend, int):
        return backend
    signals.phase("training", immediate=False, waiting=instrument_wait(backend))
    trained_on: CrossbarBackend = backend
    if local is not None:
        try:
            check_fits(config, backend)  # As the service checks before its run goes.
        except InvalidRun as e:
            backend.close()
            return bad_input(prog, e.__cause__ if isinstance(e.__cause__, Exception) else e)
        trained_on = local.begin(backend)
        if local.early is not None and local.run is not None:  # Stopped before it began.
            local.end(None)
            print(
                f"{prog}: run {local.run.id} was stopped before it began: nothing was sent", file=sys.stderr
            )
            return EXIT_STOPPED
    observers: list[TrainingObserver] = []
    if not args.quiet:
        observers.append(ProgressLine(config.training.max_epochs))
    observers += [] if local is None else local.observers

    if not args.quiet:  # First, before any pulse: what the test accuracy can and cannot mean.
        for note in config.task.unseen_test_notes():
            print(note, file=sys.stderr)
        if local is not None and local.run is not None:  # hil runs stop|pause|show act on it.
            print(f"{prog}: run {local.run.id} in the run store {database}", file=sys.stderr)

    def show(prepared: TrainingResult) -> None:
        if not args.quiet and (text := before_training(prepared)):
            print(text, file=sys.stderr)

    try:
        with stored_calibrations(database if args.no_record else None, local) as calibrations:
            run_ = run_training(
                config,
                backend=trained_on,
                observers=observers,
                stop=signals.stop,
                outputs=outputs,
                on_prepared=show,
                calibrations=calibrations,
            )
    except ValueError as e:  # LimitError is one: the pulse or task does not fit the backend
        if local is not None:
            local.end(None, f"{type(e).__name__}: {e}")
        return bad_input(prog, e)
    except KeyboardInterrupt as e:  # A second stop signal: the results are written already.
        interrupted: TrainingRun | None = getattr(e, "training_run", None)
        if local is not None:
            local.end(interrupted)  # Without a result: stopped, its epochs so far kept.
        if interrupted is None:
            raise
        print(f"{prog}: {e}", file=sys.stderr)
        present(prog, args, interrupted, outputs, signals, local)
        return EXIT_STOPPED
    except BaseException as e:
        if local is not None:
            local.end(None, f"{type(e).__name__}: {e}")
        raise
    if local is not None:
        local.end(run_)
    signals.phase("writing the results", immediate=False, waiting=lambda: "the summary to be printed")
    return present(prog, args, run_, outputs, signals, local)


def _warner(prog: str) -> Callable[[str], None]:
    def warn(text: str) -> None:
        print(f"{prog}: {text}", file=sys.stderr, flush=True)

    return warn


def present(
    prog: str,
    args: argparse.Namespace,
    run_: TrainingRun,
    outputs: RunOutputs,
    signals: SignalStop,
    local: LocalRun | None = None,
) -> int:
    """Print the summary and where the results are, then the plots; returns the exit status."""
    result = run_.result
    out = sys.stderr if args.json == "-" else sys.stdout
    print(summary(run_), file=out)
    written = run_.written or [p for p in (outputs.json, outputs.csv) if p is not None]
    if written:
        print(f"results: {', '.join(map(str, written))}", file=out)
    if local is not None and local.run is not None:
        gap = "" if local.lost_from is None else f"; its history there ends before epoch {local.lost_from}"
        print(
            f"run store: run {local.run.id} in {local.store.path} (hil runs show {local.run.id}){gap}",
            file=out,
        )
    for note in run_.write_notes:  # A result written elsewhere than asked: said in one line.
        print(f"{prog}: {note}", file=sys.stderr)
    if args.json == "-":
        print(run_.to_json())
    status = exit_status(result.outcome)
    if args.plots is not None:
        try:
            signals.phase("plotting", immediate=True)
            print(f"plotting into {args.plots} ...", file=out, flush=True)
            name = None if outputs.json is None else outputs.json.name
            paths = save_plots(run_, args.plots, name=name)
            print(f"plots: {', '.join(str(p) for p in paths.values())}", file=out)
        except RunStopped as e:
            print(f"{prog}: {e}; plots not (all) written; the results are kept", file=sys.stderr)
            return EXIT_STOPPED
        except Exception as e:  # A plot must never cost the results, which are written already.
            print(f"{prog}: plots failed ({type(e).__name__}: {e}); the results are kept", file=sys.stderr)
            return EXIT_INTERNAL if status == EXIT_OK else status
    if signals.stop.is_set and status == EXIT_OK:
        return EXIT_STOPPED  # The stop came after the last pulse: the run is complete, but stopped.
    return status

"""``hil train``: one in-situ training run from the command line, with progress and a summary."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from api.cli.backend_options import add_backend_options, backend_params, bad_input, open_backend
from api.cli.rule_options import add_rule_options, rule_overrides
from emulator.crossbar import EmulatedCrossbar
from hil.procedures.training import run_training, save_plots
from hil.resources import TRACE_ENV
from hil.seam import CrossbarBackend
from hil.trace_file import load_trace
from hil.training.config import PRESETS, RunConfig
from hil.training.history import EpochRecord, TrainingResult
from hil.training.observers import TrainingObserver
from hil.training.stop import StopSignal
from hil.training.task import Task


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hil train``."""
    p = sub.add_parser(
        "train",
        help="Train the perceptron in situ (emulator by default).",
        description=(
            "In-situ training. Default: the recommended settings (gain calibrated from the margin "
            "the devices can reach, the planned rule; needs a device curve, which the emulator "
            "provides and hardware gets from --device-curve); --preset reference: the public "
            f"reference's. Without --trace (and without {TRACE_ENV}) the emulator uses its "
            "built-in device model."
        ),
    )
    p.add_argument("--config", type=Path, help="RunConfig JSON file; options below override it.")
    add_backend_options(p)
    p.add_argument("--task", type=Path, help="Task JSON file (default: the reference 4-bit task).")
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="recommended",
        help="Start from named settings: 'recommended' (default) or 'reference' (the public reference "
        "implementation: beta 6e6, bands and error targets +-0.8, every pattern in the update, "
        "Manhattan, 50 epochs). The config file's training section and the options below override it.",
    )
    p.add_argument("--beta", type=float, help="Activation gain (1/A); with --gain calibrated, the start.")
    p.add_argument("--gain", choices=("fixed", "calibrated"), help="Use --beta as given, or calibrate it.")
    p.add_argument("--target-high", type=float, help="Error target of class 1 (e.g. 0.8 or 1).")
    p.add_argument("--target-low", type=float, help="Error target of class 0 (e.g. -0.8 or -1).")
    p.add_argument("--f-plus", type=float, help="Class-1 outputs must exceed this.")
    p.add_argument("--f-minus", type=float, help="Class-0 outputs must stay below this.")
    p.add_argument("--max-epochs", type=int, help="Most update epochs.")
    p.add_argument(
        "--ignore-in-band",
        action="store_true",
        default=None,
        help="Patterns already in their band add no update.",
    )
    add_rule_options(p)
    p.add_argument(
        "--device-curve",
        type=Path,
        metavar="TRACE",
        help="Characterised device curve (a .dat or one-column .csv trace, e.g. from hil characterize) "
        "for the feasibility check, the calibrated gain and the planned rule. Default with the "
        "emulator: the curve it replays (times its K).",
    )
    p.add_argument(
        "--curve-scale",
        type=float,
        default=1.0,
        help="Factor from the curve file's conductances to the crossbar's (e.g. the emulator's K).",
    )
    p.add_argument("--plots", type=Path, metavar="DIR", help="Save PNG plots into DIR.")
    p.add_argument("--json", metavar="PATH", help="Write the result as JSON to PATH ('-' = stdout).")
    p.add_argument("-q", "--quiet", action="store_true", help="No progress display.")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> RunConfig:
    """The run config from --config and the options that override it (validated)."""
    base: dict[str, Any] = {}
    if args.config is not None:
        base = json.loads(args.config.read_text(encoding="utf-8"))
    backend = base.setdefault("backend", {})
    if args.backend:
        backend["name"] = args.backend
    backend["params"] = backend_params(args, backend.get("name", "emulator"), backend.get("params"))
    training = base["training"] = {**PRESETS[args.preset], **base.get("training", {})}
    if args.device_curve is not None:
        training["device_curve_siemens"] = device_curve(args.device_curve, args.curve_scale)
    keys = ("beta", "gain", "f_plus", "f_minus", "target_high", "target_low", "max_epochs", "ignore_in_band")
    for key in keys:
        if getattr(args, key) is not None:
            training[key] = getattr(args, key)
    training.update(rule_overrides(args))
    if args.task is not None:
        base["task"] = Task.load(args.task).model_dump()
    return RunConfig.model_validate(base)


def device_curve(path: Path, scale: float) -> list[float]:
    """A curve file's conductances (S) times ``scale``, as gained from its first point."""
    if not path.is_file():
        raise FileNotFoundError(f"--device-curve: file not found: {path}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"--curve-scale={scale}: must be a positive number")
    g = load_trace(path).conductances_siemens * scale
    return (g - g[0]).tolist()


def with_emulator_curve(config: RunConfig, backend: CrossbarBackend) -> RunConfig:
    """For the emulator without a curve: the curve it replays, times its K (what characterising
    its device would give); any other backend or a given curve: ``config`` unchanged."""
    if config.training.device_curve_siemens is not None or not isinstance(backend, EmulatedCrossbar):
        return config
    curve = backend.config.scale_k * (backend.table - backend.table[0])
    training = config.training.model_copy(update={"device_curve_siemens": tuple(curve.tolist())})
    return config.model_copy(update={"training": training})


def before_training(result: TrainingResult) -> str:
    """What the check before training found: notes, the gain, the feasibility verdict."""
    lines = list(result.notes)
    if result.feasibility is not None:
        verdict = "feasible" if result.feasibility.feasible else "NOT feasible"
        lines.append(f"feasibility at beta = {result.beta:.4g} 1/A: {verdict}")
        lines += ["  " + line for line in result.feasibility.explain().splitlines()]
    return "\n".join(lines)


class ProgressLine(TrainingObserver):
    """One self-overwriting status line per epoch on a terminal (a line per epoch otherwise)."""

    def __init__(self, max_epochs: int, stream: TextIO | None = None) -> None:
        self.max_epochs = max_epochs
        self.stream = stream or sys.stderr
        self._tty = self.stream.isatty()

    def on_epoch(self, record: EpochRecord) -> None:
        width = 24
        done = int(width * record.epoch / max(self.max_epochs, 1))
        bar = "#" * done + "." * (width - done)
        n = record.in_band.size
        text = (
            f"[{bar}] epoch {record.epoch:>3}/{self.max_epochs}  in band {n - record.misses:>2}/{n}"
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
    return (
        f"instrument: {result.total_pulses} pulses ({result.total_verify_pulses} read-verify), "
        f"{result.total_resets} resets, {result.instrument_time_s:.3f} s of pulses and resets"
    )


def summary(result: TrainingResult, identity: str) -> str:
    """Human-readable end-of-run summary."""
    lines = [f"backend: {identity}"]
    if result.converged:
        lines.append(f"CONVERGED after {result.epochs} epochs ({result.total_pulses} pulses)")
    elif result.outcome in ("max_epochs", "infeasible"):
        why = " (ended early: no reachable weights meet the bands)" if result.outcome == "infeasible" else ""
        lines.append(f"NOT converged after {result.epochs} epochs ({result.total_pulses} pulses){why}")
        if result.diagnosis is not None:
            lines.append(f"  likely reason: {result.diagnosis.replace('_', ' ')}")
            lines += ["    " + line for line in (result.diagnosis_detail or "").splitlines()]
    else:
        lines.append(f"{result.outcome.upper()} at epoch {result.epochs}: {result.error_message}")
    lines.append(instrument_use(result))
    for name, ev in (("train", result.train), ("test", result.test)):
        if ev is None:
            continue
        lines.append(
            f"{name}: {ev.correct.sum()}/{len(ev.patterns)} correct by sign "
            f"({ev.accuracy:.0%}), {ev.in_band_accuracy:.0%} inside the target bands"
        )
        for pat, tgt, f, ok in zip(ev.patterns, ev.targets, ev.activations, ev.correct, strict=True):
            outs = " ".join(f"{x:+.3f}" for x in f)
            lines.append(f"  {pat} -> {''.join(map(str, tgt))}  f = {outs}  {'ok' if ok else 'WRONG'}")
    return "\n".join(lines)


def _interrupt(stop: StopSignal) -> None:
    """Ctrl-C: the first stops the run before its next pulse (outputs kept); a second
    gets through at once (KeyboardInterrupt: the backend is still closed, at 0 V)."""
    if stop.is_set:
        raise KeyboardInterrupt
    stop.set("interrupted by Ctrl-C")


def run(args: argparse.Namespace) -> int:
    """Run ``hil train``; exit status 0 when the run ended normally (converged or not:
    see the summary or --json, including a run ended early as infeasible), 2 for bad input,
    3 for a stop or a fault."""
    try:
        config = build_config(args)
    except (ValueError, FileNotFoundError) as e:
        return bad_input("hil train", e)
    backend = open_backend("hil train", config.backend.name, config.backend.params)
    if isinstance(backend, int):
        return backend
    stop = StopSignal()
    previous = signal.signal(signal.SIGINT, lambda *_: _interrupt(stop))
    observers: list[TrainingObserver] = []
    if not args.quiet:
        observers.append(ProgressLine(config.training.max_epochs))
    config = with_emulator_curve(config, backend)

    def show(prepared: TrainingResult) -> None:
        if not args.quiet and (text := before_training(prepared)):
            print(text, file=sys.stderr)

    try:
        run_ = run_training(config, backend=backend, observers=observers, stop=stop, on_prepared=show)
    except ValueError as e:  # LimitError is one: the pulse or task does not fit the backend
        return bad_input("hil train", e)
    finally:
        signal.signal(signal.SIGINT, previous)
    result = run_.result
    out = sys.stderr if args.json == "-" else sys.stdout
    print(summary(result, run_.identity), file=out)
    if args.plots is not None:
        paths = save_plots(run_, args.plots)
        print(f"plots: {', '.join(str(p) for p in paths.values())}", file=out)
    if args.json:
        if args.json == "-":
            print(run_.to_json())
        else:
            Path(args.json).write_text(run_.to_json(), encoding="utf-8")
    return 0 if result.outcome in ("converged", "max_epochs", "infeasible") else 3

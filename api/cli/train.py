"""``hil train``: one in-situ training run from the command line, with progress and a summary."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from api.cli.backend_options import add_backend_options, backend_params, bad_input, open_backend
from api.cli.rule_options import add_rule_options, rule_overrides
from hil.procedures.training import run_training, save_plots
from hil.resources import TRACE_ENV
from hil.training.config import RunConfig
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
            "In-situ training (Manhattan rule, or methods a, b, c: --rule). Without --trace (and without "
            f"{TRACE_ENV}) the emulator uses its built-in device model."
        ),
    )
    p.add_argument("--config", type=Path, help="RunConfig JSON file; options below override it.")
    add_backend_options(p)
    p.add_argument("--task", type=Path, help="Task JSON file (default: the reference 4-bit task).")
    p.add_argument("--beta", type=float, help="Activation gain (1/A).")
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
    training = base.setdefault("training", {})
    for key in ("beta", "f_plus", "f_minus", "max_epochs", "ignore_in_band"):
        if getattr(args, key) is not None:
            training[key] = getattr(args, key)
    training.update(rule_overrides(args))
    if args.task is not None:
        base["task"] = Task.load(args.task).model_dump()
    return RunConfig.model_validate(base)


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
    elif result.outcome == "max_epochs":
        lines.append(f"NOT converged after {result.epochs} epochs ({result.total_pulses} pulses)")
        stalled = result.stalled_epochs()
        if stalled >= 3:
            lines.append(
                f"  no conductance moved in the last {stalled} epochs although pulses were sent: "
                "the pulsed devices look saturated (potentiation only); more epochs will not help"
            )
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
    see the summary or --json), 2 for bad input, 3 for a stop or a fault."""
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
    try:
        run_ = run_training(config, backend=backend, observers=observers, stop=stop)
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
    return 0 if result.outcome in ("converged", "max_epochs") else 3

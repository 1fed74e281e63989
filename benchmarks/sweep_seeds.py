"""Convergence statistics over many device-variation seeds (the issue's headline numbers).

Usage: python benchmarks/sweep_seeds.py [--seeds 200] [--trace PATH] [--beta 6e6] [--ignore-in-band]
For each seed: a fresh EmulatedCrossbar (lognormal shifts drawn from the seed),
one Manhattan training at the given hyper-parameters. Prints the share that
converged, median and max epochs to converge, and the test accuracy of the
converged runs (by sign, per pattern and per output).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from seed_args import chosen_trace, sweep_parser

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train


def sweep(seeds: int, trace: Path | None, cfg: TrainingConfig) -> dict[str, float]:
    """Train once per seed; return the summary figures."""
    task = Task.reference()
    epochs, acc, out_acc = [], [], []
    for seed in range(seeds):
        r = train(EmulatedCrossbar(EmulatorConfig(seed=seed, trace=trace)), task, cfg)
        if r.converged and r.test is not None:
            epochs.append(r.epochs)
            acc.append(r.test.accuracy)
            out_acc.append(r.test.output_accuracy)
    n = len(epochs)
    nan = float("nan")
    return {
        "seeds": seeds,
        "converged": n,
        "share": n / seeds,
        "median_epochs": float(np.median(epochs)) if n else nan,
        "max_epochs": float(max(epochs)) if n else nan,
        "test_accuracy": float(np.mean(acc)) if n else nan,
        "test_output_accuracy": float(np.mean(out_acc)) if n else nan,
    }


def main() -> None:
    """Run the sweep and print its figures."""
    ap = sweep_parser(__doc__ or "")
    ap.add_argument("--max-epochs", type=int, default=50)
    ap.add_argument("--ignore-in-band", action="store_true")
    args = ap.parse_args()
    args.trace = chosen_trace(args)
    cfg = TrainingConfig(beta=args.beta, max_epochs=args.max_epochs, ignore_in_band=args.ignore_in_band)
    s = sweep(args.seeds, args.trace, cfg)
    print(f"device: {args.trace or 'built-in device'}; beta={cfg.beta:g} 1/A, bands +-{cfg.f_plus}")
    print(f"converged: {s['converged']}/{s['seeds']} = {s['share']:.1%}")
    print(f"epochs to converge: median {s['median_epochs']:g}, max {s['max_epochs']:g}")
    print(
        f"test accuracy of converged runs: {s['test_accuracy']:.1%} of patterns, "
        f"{s['test_output_accuracy']:.1%} of outputs (by sign)"
    )


if __name__ == "__main__":
    main()

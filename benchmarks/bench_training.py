"""Time one full Manhattan training run and a batch of N runs on EmulatedCrossbar.

Usage: python benchmarks/bench_training.py [--runs N] [--trace PATH]
Prints seconds per run, runs per second and epochs per second. Each run is a
full reference-hyper-parameter run (50 epochs unless it converges), seeded 0..N-1.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.resources import trace_from_env
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--trace", type=Path, default=trace_from_env())
    ap.add_argument("--builtin", action="store_true", help="Ignore HIL_TRACE: use the built-in device.")
    args = ap.parse_args()
    if args.builtin:
        args.trace = None
    task, cfg = Task.reference(), TrainingConfig()
    device = f"trace {args.trace}" if args.trace else "built-in device"

    t0 = time.perf_counter()
    one = train(EmulatedCrossbar(EmulatorConfig(seed=0, trace=args.trace)), task, cfg)
    t_one = time.perf_counter() - t0

    epochs = 0
    t0 = time.perf_counter()
    for seed in range(args.runs):
        result = train(EmulatedCrossbar(EmulatorConfig(seed=seed, trace=args.trace)), task, cfg)
        epochs += len(result.history)
    t_all = time.perf_counter() - t0

    print(f"device: {device}")
    print(f"one run (seed 0): {len(one.history)} epochs in {t_one * 1e3:.1f} ms")
    print(f"{args.runs} runs: {t_all:.2f} s, {args.runs / t_all:.1f} runs/s, {epochs / t_all:.0f} epochs/s")
    print(f"per epoch: {t_all / epochs * 1e6:.0f} us (6 VMMs + 1 pulse batch + 1 read-all)")


if __name__ == "__main__":
    main()

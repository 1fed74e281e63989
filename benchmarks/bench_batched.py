"""Complete 4x4 trainings per second: batched (CrossbarBatch + train_batch) against one at a time.

Usage: nice python benchmarks/bench_batched.py [--runs 10000] [--single-runs 300] [--trace PATH | --builtin]

Both ways run the reference task and settings (up to 50 epochs), seeds 0..N-1,
shift draws included (the batch is built inside the timed part). The single way
is Trainer on EmulatedCrossbar, one seed after the other, over the first
``--single-runs`` seeds; its rate is extrapolated to N. The two are measured in
this one run, so the ratio does not depend on the machine's load elsewhere as
much as the absolute figures do. The outcomes of the shared seeds are checked equal.
Target (issue 10): 10,000 complete trainings in under 1 s on one core.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from crossbar_hil.emulator.batched import CrossbarBatch
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.resources import trace_from_env
from crossbar_hil.training.batched import train_batch
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train


def main() -> None:
    """Run both ways and print the figures."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000, help="Trainings in the batch (seeds 0..N-1).")
    ap.add_argument("--single-runs", type=int, default=300, help="Trainings run one at a time.")
    ap.add_argument("--repeat", type=int, default=3, help="Batched timings; the best is reported.")
    ap.add_argument("--trace", type=Path, default=trace_from_env())
    ap.add_argument("--builtin", action="store_true", help="Ignore HIL_TRACE: use the built-in device.")
    ap.add_argument("--beta", type=float, default=TrainingConfig().beta, help="Gain (1/A).")
    args = ap.parse_args()
    trace = None if args.builtin else args.trace
    emu, cfg, task = EmulatorConfig(trace=trace), TrainingConfig(beta=args.beta), Task.reference()
    threads = os.environ.get("OMP_NUM_THREADS", "unset")

    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        batch = train_batch(CrossbarBatch(emu, np.arange(args.runs)), task, cfg)
        times.append(time.perf_counter() - t0)
    t_batch = min(times)

    t0 = time.perf_counter()
    singles = [
        train(EmulatedCrossbar(emu.model_copy(update={"seed": s})), task, cfg)
        for s in range(args.single_runs)
    ]
    t_single = time.perf_counter() - t0

    shared = min(args.runs, args.single_runs)
    agree = all(
        bool(batch.converged[s]) == r.converged and int(batch.epochs[s]) == r.epochs
        for s, r in enumerate(singles[:shared])
    )
    rate_batch, rate_single = args.runs / t_batch, args.single_runs / t_single
    epochs = int(batch.epochs.sum())
    print(f"device: {trace or 'built-in device'}; beta {cfg.beta:g} 1/A, up to {cfg.max_epochs} epochs")
    print(f"threads: OMP_NUM_THREADS={threads}")
    print(
        f"batched: {args.runs} trainings in {t_batch:.3f} s (best of {args.repeat}: "
        f"{', '.join(f'{t:.3f}' for t in times)}) = {rate_batch:,.0f} trainings/s, "
        f"{epochs / t_batch:,.0f} epochs/s; converged {batch.converged.mean():.2%}"
    )
    print(
        f"single:  {args.single_runs} trainings in {t_single:.2f} s = {rate_single:,.1f} trainings/s "
        f"(10,000 would take {1e4 / rate_single:.0f} s)"
    )
    print(f"ratio batched/single: {rate_batch / rate_single:,.0f}x")
    print(f"same outcome and epochs on the {shared} shared seeds: {agree}")
    t_10k = 1e4 / rate_batch
    print(f"target 10,000 trainings < 1 s: {'met' if t_10k < 1 else 'NOT met'} ({t_10k:.3f} s)")


if __name__ == "__main__":
    main()

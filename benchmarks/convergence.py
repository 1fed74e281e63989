"""Convergence over many device-variation seeds: the reference settings, the default, feasibility.

Usage: python benchmarks/convergence.py [--seeds 10000] [--trace PATH | --builtin] [--workers 2]

Per seed, a fresh EmulatedCrossbar (lognormal shifts from the seed) is trained
three times: with ``TrainingConfig.reference()`` (the public reference's settings) and
with ``TrainingConfig.recommended()``, the default of ``hil train`` (calibrated gain, planned rule, in-band
patterns skipped, saturated devices left alone), and the default at the
reference gain 6e6 and bands (``gain="fixed"``); the last two are given the device
curve of the emulated device (``--assumed-curve builtin``: the built-in model's
curve instead, as on hardware with an uncharacterised device). Feasibility at
the reference gain and bands is decided exactly (:mod:`hil.feasibility`). Prints
shares with counts, the share of the feasible draws that converge, and the
reasons given by the unconverged runs.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from seed_args import chosen_trace, sweep_parser

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.devices import default_device
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.feasibility import NeedSpec, check_feasibility
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

TASK = Task.reference()


def one_seed(seed: int, trace: Path | None, assumed: str) -> tuple[bool, bool, bool, str, int, float, bool]:
    """(feasible at the reference settings, reference converged, default converged,
    the default's diagnosis or 'converged', its epochs, its beta, the default rule
    converged at the reference gain and bands)."""
    ref = TrainingConfig.reference()
    xb = EmulatedCrossbar(EmulatorConfig(seed=seed, trace=trace))
    own = xb.config.scale_k * (xb.table - xb.table[0])
    need = NeedSpec(ref.beta, ref.f_plus, ref.f_minus)
    feasible = check_feasibility(TASK, need, xb.read_conductances(ref.read_v), own).feasible
    r_ref = train(xb, TASK, ref)
    xb = EmulatedCrossbar(EmulatorConfig(seed=seed, trace=trace))
    table = xb.table if assumed == "own" else np.asarray(default_device().table())
    curve = xb.config.scale_k * (table - table[0])
    recommended = TrainingConfig.recommended(device_curve_siemens=tuple(curve))
    r_def = train(xb, TASK, recommended)
    xb = EmulatedCrossbar(EmulatorConfig(seed=seed, trace=trace))
    r_fix = train(xb, TASK, recommended.model_copy(update={"gain": "fixed", "beta": ref.beta}))
    diagnosis = r_def.diagnosis or "converged"
    return feasible, r_ref.converged, r_def.converged, diagnosis, r_def.epochs, r_def.beta, r_fix.converged


def share(k: int, n: int) -> str:
    """'k/n = p %' with a 95 % Wilson interval."""
    if n == 0:
        return "0/0"
    p, z = k / n, 1.96
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{k}/{n} = {p:.2%} (95 % CI {mid - half:.2%}..{mid + half:.2%})"


def main() -> None:
    """Run every seed and print the figures."""
    ap = sweep_parser(__doc__ or "")
    ap.add_argument(
        "--workers", type=int, default=2, help="Processes (the machine is shared: keep it small)."
    )
    ap.add_argument("--assumed-curve", choices=("own", "builtin"), default="own")
    args = ap.parse_args()
    trace = chosen_trace(args)
    start = time.perf_counter()
    seeds = range(args.seeds)
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(
            pool.map(one_seed, seeds, [trace] * args.seeds, [args.assumed_curve] * args.seeds, chunksize=50)
        )
    feas = np.array([r[0] for r in rows])
    ref = np.array([r[1] for r in rows])
    dflt = np.array([r[2] for r in rows])
    epochs = np.array([r[4] for r in rows])
    betas = np.array([r[5] for r in rows])
    fixed = np.array([r[6] for r in rows])
    n = args.seeds
    print(f"device: {trace or 'built-in device'}; seeds 0..{n - 1}; planning curve: {args.assumed_curve}")
    print(f"feasible at the reference settings (beta 6e6, bands +-0.8): {share(int(feas.sum()), n)}")
    print(f"reference preset converges: {share(int(ref.sum()), n)}")
    print(f"  of the feasible draws: {share(int((ref & feas).sum()), int(feas.sum()))}")
    print(f"  converged yet infeasible (must be 0): {int((ref & ~feas).sum())}")
    print(f"default rule at the reference gain and bands converges: {share(int(fixed.sum()), n)}")
    print(f"  of the feasible draws: {share(int((fixed & feas).sum()), int(feas.sum()))}")
    print(f"default converges: {share(int(dflt.sum()), n)}")
    print(f"  of the feasible draws: {share(int((dflt & feas).sum()), int(feas.sum()))}")
    print(f"  epochs to converge: median {np.median(epochs[dflt]):g}, max {epochs[dflt].max():g}")
    print(
        f"  calibrated beta (1/A): median {np.median(betas):.3g}, 1-99 % {np.percentile(betas, 1):.3g}"
        f"..{np.percentile(betas, 99):.3g}"
    )
    print(f"  reasons given when not converged: {dict(Counter(r[3] for r in rows if not r[2]))}")
    print(f"{n / (time.perf_counter() - start):.0f} seeds/s with {args.workers} workers")


if __name__ == "__main__":
    main()

"""Manhattan vs methods a, b, c of Lim et al. on the 4x4 reference task, over device-variation seeds.

Usage: python benchmarks/compare_rules.py [--seeds 200] [--trace PATH] [--beta 6e6]
           [--targets 0.8 1.0] [--update batch] [--max-epochs 50]

Every rule trains the same seeds (fresh EmulatedCrossbar per seed and rule, the
same lognormal shifts), at the reference settings by default: beta 6e6 1/A,
bands +-0.8, error targets +-0.8 (the reference's own), at most 50 epochs.
Method c needs a device that depresses, which a measured trace is not unless a
depression trace is given, so the table has three devices:

* ``trace``: the reference trace (HIL_TRACE), manhattan, method_a, method_b;
* ``trace+mirror``: the same trace with a synthetic depression trace, its
  mirror image (``Gmax + Gmin - G(k)``), so that method c can run on the real
  potentiation data (the depression half is made up, and said so);
* ``fitted``: the built-in device (the Lim exponential model fitted to the
  trace), depressing with the same law mirrored; all four rules.

Printed per (device, targets, rule): share of seeds converged, median epochs of
the converged runs, and per run (mean over all seeds): resets, read-verify
pulses, pulses, and instrument time (pulse widths + 1 s per reset).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from seed_args import sweep_parser

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.trace_file import load_trace
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train


@dataclass(frozen=True)
class Row:
    """Figures of one (device, targets, rule) over the seeds."""

    device: str
    target: float
    rule: str
    seeds: int
    converged: int
    median_epochs: float
    resets: float
    verify_pulses: float
    pulses: float
    instrument_time_s: float

    def line(self) -> str:
        share = f"{self.converged}/{self.seeds} = {self.converged / self.seeds:6.1%}"
        med = "-" if np.isnan(self.median_epochs) else f"{self.median_epochs:g}"
        return (
            f"{self.device:<13} ±{self.target:<4g} {self.rule:<10} {share:>18} {med:>7} "
            f"{self.resets:8.1f} {self.verify_pulses:8.1f} {self.pulses:8.1f} {self.instrument_time_s:10.2f}"
        )


HEADER = (
    f"{'device':<13} {'tgt':<5} {'rule':<10} {'converged':>18} {'med.ep':>7} "
    f"{'resets':>8} {'verify':>8} {'pulses':>8} {'instr. s':>10}"
)


def run_rule(emu: dict[str, object], seeds: int, cfg: TrainingConfig) -> tuple[int, float, list[float]]:
    """Train every seed; return converged count, median epochs, mean resets/verify/pulses/time."""
    task = Task.reference()
    epochs, sums = [], np.zeros(4)
    for seed in range(seeds):
        r = train(EmulatedCrossbar(EmulatorConfig(seed=seed, **emu)), task, cfg)
        if r.outcome == "fault":
            raise RuntimeError(f"seed {seed}, {cfg.rule}: {r.error_message}")
        if r.converged:
            epochs.append(r.epochs)
        sums += (r.total_resets, r.total_verify_pulses, r.total_pulses, r.instrument_time_s)
    median = float(np.median(epochs)) if epochs else float("nan")
    return len(epochs), median, list(sums / seeds)


def mirrored_depression(trace: Path, directory: Path) -> Path:
    """A synthetic depression trace: the potentiation trace mirrored, ``Gmax + Gmin - G(k)``, as CSV."""
    g = load_trace(trace).conductances_siemens
    down = g.max() + g.min() - g
    path = directory / "mirrored_depression.csv"
    path.write_text("conductance_siemens\n" + "\n".join(repr(float(x)) for x in down), encoding="utf-8")
    return path


def main() -> None:
    """Run every (device, targets, rule) and print the table."""
    ap = sweep_parser(__doc__ or "")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.8], help="Error targets ±t.")
    ap.add_argument("--update", choices=["batch", "online"], default="batch")
    ap.add_argument("--max-epochs", type=int, default=50)
    ap.add_argument("--saturation-tol", type=float, default=0.0, help="saturation_tol_siemens (S).")
    ap.add_argument("--saturation-pulses", type=int, default=2, help="saturation_pulses.")
    ap.add_argument("--devices", nargs="+", default=["trace", "trace+mirror", "fitted"])
    args = ap.parse_args()
    if args.trace is None and not args.builtin:
        ap.error("no trace: set HIL_TRACE or --trace (or --builtin for the fitted device only)")
    with tempfile.TemporaryDirectory() as tmp:
        devices: dict[str, tuple[dict[str, object], tuple[str, ...]]] = {
            "fitted": ({"depression": True}, ("manhattan", "method_a", "method_b", "method_c"))
        }
        if not args.builtin:
            down = mirrored_depression(args.trace, Path(tmp))
            devices["trace"] = ({"trace": args.trace}, ("manhattan", "method_a", "method_b"))
            devices["trace+mirror"] = (
                {"trace": args.trace, "depression_trace": down, "depression": True},
                ("method_c",),
            )
        print(
            f"trace: {args.trace}; beta={args.beta:g} 1/A; bands ±0.8; update {args.update}; "
            f"max {args.max_epochs} epochs; seeds 0..{args.seeds - 1}; "
            f"saturation: {args.saturation_pulses} pulse(s) rising <= {args.saturation_tol:g} S; "
            "reset counted 1 s"
        )
        print(HEADER)
        for name in args.devices:
            if name not in devices:
                continue
            emu, rules = devices[name]
            for target in args.targets:
                for rule in rules:
                    cfg = TrainingConfig(
                        rule=rule,
                        update=args.update,
                        beta=args.beta,
                        target_high=target,
                        target_low=-target,
                        max_epochs=args.max_epochs,
                        saturation_tol_siemens=args.saturation_tol,
                        saturation_pulses=args.saturation_pulses,
                    )
                    t0 = time.perf_counter()
                    conv, med, (resets, verify, pulses, secs) = run_rule(emu, args.seeds, cfg)
                    row = Row(name, target, rule, args.seeds, conv, med, resets, verify, pulses, secs)
                    print(row.line() + f"   ({time.perf_counter() - t0:.0f} s to run)", flush=True)


if __name__ == "__main__":
    main()

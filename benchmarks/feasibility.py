"""Upper bound on what ANY trainer can reach: the share of seeds whose devices can meet the bands.

Usage: python benchmarks/feasibility.py [--seeds 200] [--trace PATH | --builtin] [--beta 6e6]

For each seed, the emulated crossbar is read (what any backend can measure) and
:func:`hil.feasibility.check_feasibility` decides, exactly, whether any reachable
device positions (every position: the devices start at reset) meet the bands.
Prints the feasible share with its count, and the best reachable margin against
the needed one.
"""

from __future__ import annotations

import time

import numpy as np
from seed_args import chosen_trace, sweep_parser

from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.training.feasibility import NANO, NeedSpec, check_feasibility
from crossbar_hil.training.task import Task


def main() -> None:
    """Print the feasible share and the margin needed versus reached."""
    ap = sweep_parser(__doc__ or "")
    ap.add_argument("--f-plus", type=float, default=0.8)
    ap.add_argument("--f-minus", type=float, default=-0.8)
    args = ap.parse_args()
    trace = chosen_trace(args)
    task = Task.reference()
    need = NeedSpec(args.beta, args.f_plus, args.f_minus)
    slack, start = [], time.perf_counter()
    for seed in range(args.seeds):
        xb = EmulatedCrossbar(EmulatorConfig(seed=seed, trace=trace))
        curve = xb.config.scale_k * (xb.table - xb.table[0])
        report = check_feasibility(task, need, xb.read_conductances(0.05), curve, can_reset=True)
        slack.append(report.margin_a)
    s = np.array(slack) * NANO
    n_ok = int(np.count_nonzero(s > 0))
    print(
        f"device: {trace or 'built-in device'}; beta={args.beta:g} 1/A; bands {args.f_minus}, {args.f_plus}"
    )
    print(f"feasible (upper bound for any rule): {n_ok}/{args.seeds} = {n_ok / args.seeds:.2%} of seeds")
    print(f"best smallest slack (nA): median {np.median(s):+.1f}, max {s.max():+.1f}")
    print(f"{args.seeds / (time.perf_counter() - start):.0f} seeds/s")


if __name__ == "__main__":
    main()

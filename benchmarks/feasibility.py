"""Upper bound on what ANY trainer can reach: the share of seeds whose devices can meet the bands.

Usage: python benchmarks/feasibility.py [--seeds 200] [--trace PATH] [--beta 6e6]

For each seed the emulator's shifts fix, per logic weight, the interval it can
take: ``K((s+ - s-) +- (max(G_exp) - G_exp(0)))`` when each device of the pair can
be placed anywhere on its table (with resets). Per neuron, a linear programme
finds the largest margin ``min_n s_n * I_n`` over that box; the seed is feasible
when the margin reaches ``atanh(f+)/beta``. This relaxes the discrete device
positions to intervals, so it is an upper bound on the share any update rule
can converge. Needs scipy (``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import numpy as np
from seed_args import chosen_trace, sweep_parser

from emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from hil.training.task import Task


def best_margins(xb: EmulatedCrossbar, task: Task) -> np.ndarray:
    """Largest achievable ``min_n s_n I_n`` (A) per neuron on this crossbar."""
    from scipy.optimize import linprog

    v, t = task.voltages("train"), task.targets("train")
    k = xb.config.scale_k
    reach = k * (xb.table.max() - xb.table[0])
    shifts = k * xb.shifts_siemens
    out = []
    for i in range(task.n_outputs):
        base = shifts[: task.n_inputs, 2 * i] - shifts[: task.n_inputs, 2 * i + 1]
        sign = np.where(t[:, i] == 1, 1.0, -1.0)
        # Variables W_0..W_{n-1}, m; maximise m subject to m - s_n V_n . W <= 0.
        cost = np.r_[np.zeros(task.n_inputs), -1.0]
        a_ub = np.c_[-(sign[:, None] * v), np.ones(len(v))]
        bounds = [(b - reach, b + reach) for b in base] + [(None, None)]
        res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(len(v)), bounds=bounds)
        out.append(-res.fun)
    return np.array(out)


def main() -> None:
    """Print the feasible share and the margin needed versus reached."""
    ap = sweep_parser(__doc__ or "")
    ap.add_argument("--f-plus", type=float, default=0.8)
    args = ap.parse_args()
    trace = chosen_trace(args)
    task = Task.reference()
    need = np.arctanh(args.f_plus) / args.beta
    crossbars = (EmulatedCrossbar(EmulatorConfig(seed=s, trace=trace)) for s in range(args.seeds))
    margins = np.array([best_margins(xb, task).min() for xb in crossbars])
    print(f"device: {trace or 'built-in device'}; beta={args.beta:g} 1/A; needed margin {need:.3g} A")
    print(f"feasible (upper bound for any rule): {np.mean(margins >= need):.1%} of {args.seeds} seeds")
    print(f"best margin / needed: median {np.median(margins) / need:.2f}, max {margins.max() / need:.2f}")


if __name__ == "__main__":
    main()

"""Can any reachable weights meet the bands on this crossbar? An exact check, before training.

What is known on any backend: each device's conductance now (a read), its pulse
position (0 just after a reset, the usual start) and its device curve, the
conductance gained after ``m`` potentiating pulses from reset (a calibration, a
characterised trace, a model, or learned in situ: one curve for every device or
one per device, :mod:`crossbar_hil.training.curves`). From these, each device can reach the values
``G_now - curve[pos] + curve[m]`` for ``m >= pos`` by potentiation, and for every
``m`` when the backend can reset. Neuron ``i``'s weights ``W_ij = G+_ij - G-_ij``
must then give, for every training pattern ``n`` of class ``c``::

    s_n * I_in >= need_n,   I_in = sum_j W_ij V_nj,   s_n = +1 (c = 1) or -1 (c = 0),
    need_n = atanh(f+) / beta (c = 1) or -atanh(f-) / beta (c = 0),

which is :func:`~crossbar_hil.training.network.in_band` written on the currents. The *slack* of a
pattern is ``s_n I_in - need_n``; a neuron is feasible when the largest reachable
smallest slack is positive. Neurons are independent.

Solver (per neuron, in nS, V and nA: values of order 1 to 1000, far from the
solver's tolerances): the linear relaxation (each device anywhere between its
lowest and highest reachable conductance) bounds the best slack from above; the
reachable values nearest to its solution give a lower bound; when the two
bracket zero, a mixed-integer programme over the device positions decides
exactly. Every solution returned is re-evaluated in numpy from the positions it
names, and the slack reported is that re-evaluation. Uses scipy's HiGHS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.training.task import Task

NANO = 1e9
"""S -> nS and A -> nA."""
_TIE_NA = 1e-6
"""Slacks within this of 0 (nA) are re-decided by the exact programme."""


@dataclass(frozen=True)
class NeedSpec:
    """What the bands ask of the currents: gain (1/A) and band edges."""

    beta: float
    f_plus: float
    f_minus: float

    def needs_a(self, targets: NDArray[np.int8]) -> NDArray[np.float64]:
        """Least ``s_n I_n`` (A) per pattern and neuron, for targets (N, n_outputs) in {0, 1}."""
        if not np.isfinite(self.beta):
            return np.zeros(targets.shape)
        return np.where(targets == 1, np.arctanh(self.f_plus), -np.arctanh(self.f_minus)) / self.beta


@dataclass(frozen=True)
class NeuronFeasibility:
    """The verdict for one neuron, with the best reachable weights found."""

    neuron: int
    feasible: bool
    slack_a: float
    """Smallest pattern slack (A) of ``positions``, re-evaluated: the best reachable when exact."""
    bound_a: float
    """No reachable weights give a smallest slack above this (A)."""
    positions: NDArray[np.int64]
    """(n_inputs, 2) pulse positions of (G+, G-) per input that reach ``slack_a``."""
    weights_siemens: NDArray[np.float64]
    """(n_inputs,) the weights at ``positions`` (S)."""
    pattern_slack_a: NDArray[np.float64]
    """(N,) slack of each training pattern at ``positions`` (A)."""
    needs_a: NDArray[np.float64]
    """(N,) least ``s_n I_n`` each pattern needs (A)."""
    worst_pattern: int
    """Index of the training pattern with the smallest slack."""


@dataclass(frozen=True)
class FeasibilityReport:
    """Per neuron verdicts; feasible when every neuron is."""

    neurons: tuple[NeuronFeasibility, ...]
    patterns: tuple[str, ...]

    @property
    def feasible(self) -> bool:
        """Every neuron can meet every training pattern's band with reachable weights."""
        return all(n.feasible for n in self.neurons)

    @property
    def margin_a(self) -> float:
        """Smallest best slack over the neurons (A): > 0 when feasible."""
        return min(n.slack_a for n in self.neurons)

    def explain(self) -> str:
        """One line per neuron: feasible, or which pattern falls short and by how much."""
        lines = []
        for n in self.neurons:
            p = n.worst_pattern
            need_na = n.needs_a[p] * NANO
            if n.feasible:
                lines.append(
                    f"neuron {n.neuron}: feasible, best reachable weights clear every band by "
                    f">= {n.slack_a * NANO:.1f} nA (tightest: pattern {self.patterns[p]})"
                )
            else:
                lines.append(
                    f"neuron {n.neuron}: INFEASIBLE, no reachable weights meet every band; the best "
                    f"leave pattern {self.patterns[p]} {-n.slack_a * NANO:.1f} nA short of the "
                    f"{need_na:.1f} nA it needs (no reachable weights do better than "
                    f"{n.bound_a * NANO:+.1f} nA)"
                )
        return "\n".join(lines)


def reachable_conductances(
    g_now_siemens: NDArray[np.float64],
    curve_siemens: NDArray[np.float64],
    positions: NDArray[np.int64] | None = None,
    can_reset: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Conductances each device can reach (S), and which of them are reachable.

    ``g_now_siemens`` (rows, cols) read now; ``curve_siemens`` the conductance gained
    after m pulses from reset, ``curve[..., 0] = 0``: one curve (n_max + 1,) for every
    device, or one per device (rows, cols, n_max + 1); ``positions`` (rows, cols) the
    devices' pulse positions now (None = all just reset).
    Returns ``values`` (rows, cols, n_max + 1) with ``values[..., m]`` the
    conductance at position m, and a mask of the positions reachable by
    potentiation from now, plus every position when ``can_reset``.
    """
    g = np.asarray(g_now_siemens, dtype=float)
    curves = np.asarray(curve_siemens, dtype=float)
    if curves.ndim == 1:
        curves = np.broadcast_to(curves, (*g.shape, curves.size))
    elif curves.shape[:-1] != g.shape:
        raise ValueError(f"device curves of shape {curves.shape} do not fit a read of shape {g.shape}")
    n = curves.shape[-1]
    pos = np.zeros(g.shape, dtype=np.int64) if positions is None else np.asarray(positions)
    if np.any(pos < 0) or np.any(pos >= n):
        raise ValueError(f"positions must lie in [0, {n - 1}] (the curve's positions)")
    at_pos = np.take_along_axis(curves, pos[..., None], axis=-1)[..., 0]
    values = (g - at_pos)[..., None] + curves
    m = np.arange(n)
    reachable = np.ones(values.shape, dtype=bool) if can_reset else m >= pos[..., None]
    return values, reachable


def check_feasibility(
    task: Task,
    need: NeedSpec,
    g_now_siemens: NDArray[np.float64],
    curve_siemens: NDArray[np.float64],
    positions: NDArray[np.int64] | None = None,
    can_reset: bool = True,
    exact: bool = False,
) -> FeasibilityReport:
    """Feasibility of ``task``'s training bands on a crossbar read as ``g_now_siemens``.

    ``exact=True`` always runs the exact search, so that ``slack_a`` is the best
    reachable slack (otherwise only the verdict is exact, and ``slack_a`` is a
    verified lower bound on the best slack).
    """
    return check_patterns(
        task.voltages("train"),
        task.targets("train"),
        need,
        g_now_siemens,
        curve_siemens,
        positions,
        can_reset,
        exact,
        tuple(task.patterns("train")),
    )


def check_patterns(
    voltages: NDArray[np.float64],
    targets: NDArray[np.int8],
    need: NeedSpec,
    g_now_siemens: NDArray[np.float64],
    curve_siemens: NDArray[np.float64],
    positions: NDArray[np.int64] | None = None,
    can_reset: bool = True,
    exact: bool = False,
    patterns: tuple[str, ...] | None = None,
) -> FeasibilityReport:
    """:func:`check_feasibility` for training patterns given as row voltages (N, n_inputs) V
    and expected bits (N, n_outputs); ``patterns`` names them in explanations."""
    values, reachable = reachable_conductances(g_now_siemens, curve_siemens, positions, can_reset)
    v = np.asarray(voltages, dtype=float)
    n_inputs, n_outputs = v.shape[1], targets.shape[1]
    needs = need.needs_a(targets)
    neurons = []
    for i in range(n_outputs):
        s = np.where(targets[:, i] == 1, 1.0, -1.0)
        coef = s[:, None] * v  # slack_n = coef_n . W - need_n
        plus = [values[j, 2 * i][reachable[j, 2 * i]] * NANO for j in range(n_inputs)]
        minus = [values[j, 2 * i + 1][reachable[j, 2 * i + 1]] * NANO for j in range(n_inputs)]
        idx_p = [np.flatnonzero(reachable[j, 2 * i]) for j in range(n_inputs)]
        idx_m = [np.flatnonzero(reachable[j, 2 * i + 1]) for j in range(n_inputs)]
        sol = solve_neuron(coef, needs[:, i] * NANO, plus, minus, exact)
        pos = np.array([[idx_p[j][a], idx_m[j][b]] for j, (a, b) in enumerate(sol.choice)], dtype=np.int64)
        w = np.array([values[j, 2 * i, pos[j, 0]] - values[j, 2 * i + 1, pos[j, 1]] for j in range(len(pos))])
        # Re-evaluated from the positions alone, in SI units: this is what is reported.
        slack = coef @ w - needs[:, i]
        neurons.append(
            NeuronFeasibility(
                neuron=i,
                feasible=bool(slack.min() > 0),
                slack_a=float(slack.min()),
                bound_a=max(sol.bound_na / NANO, float(slack.min())),
                positions=pos,
                weights_siemens=w,
                pattern_slack_a=slack,
                needs_a=needs[:, i],
                worst_pattern=int(np.argmin(slack)),
            )
        )
    names = patterns if patterns is not None else tuple(f"#{n}" for n in range(len(v)))
    return FeasibilityReport(tuple(neurons), names)


@dataclass(frozen=True)
class _Solution:
    choice: list[tuple[int, int]]
    """Per input, the indices into its (plus, minus) value lists."""
    slack_na: float
    bound_na: float


class _Weights:
    """The reachable values of one logic weight (nS), sorted, with the device indices of each."""

    def __init__(self, plus_ns: NDArray[np.float64], minus_ns: NDArray[np.float64]) -> None:
        flat = (plus_ns[:, None] - minus_ns[None, :]).ravel()
        order = np.argsort(flat, kind="stable")
        self.values = flat[order]
        self._flat_index = order
        self._n_minus = minus_ns.size

    def choice(self, k: int) -> tuple[int, int]:
        """(plus index, minus index) of sorted value k."""
        a, b = divmod(int(self._flat_index[k]), self._n_minus)
        return a, b

    def between(self, lo: float, hi: float) -> NDArray[np.int64]:
        """Indices of the sorted values in [lo, hi]."""
        return np.arange(np.searchsorted(self.values, lo, "left"), np.searchsorted(self.values, hi, "right"))

    def nearest(self, t: float, k: int) -> NDArray[np.int64]:
        """Indices of the k values at or below t and the k at or above."""
        i = int(np.searchsorted(self.values, t))
        return np.arange(max(i - k, 0), min(i + k, self.values.size))


def solve_neuron(
    coef: NDArray[np.float64],
    need_na: NDArray[np.float64],
    plus_ns: list[NDArray[np.float64]],
    minus_ns: list[NDArray[np.float64]],
    exact: bool = False,
) -> _Solution:
    """Maximise ``min_n coef_n . W - need_n`` over ``W_j = plus_j[a] - minus_j[b]`` (nS, nA).

    ``coef`` (N, n_inputs) in V; ``plus_ns[j]``, ``minus_ns[j]`` the reachable
    conductances of input j's two devices (nS).

    1. Relaxation: each ``W_j`` anywhere in ``[min, max]`` of its values, a linear
       programme; its optimum bounds the best slack from above.
    2. The reachable values nearest to the relaxed solution, all combinations:
       a verified lower bound.
    3. When these do not decide (or ``exact``): branch and bound over the sorted
       value lists, with the relaxation as the bound, enumerating small boxes.
    """
    weights = [_Weights(p, m) for p, m in zip(plus_ns, minus_ns, strict=True)]
    full = [np.arange(w.values.size) for w in weights]
    relaxed_w, bound = _relaxed(coef, need_na, _box(weights, full))
    near = [w.nearest(t, 2) for w, t in zip(weights, relaxed_w, strict=True)]
    best = _best_of(coef, need_na, weights, near)
    if not exact and (best.slack_na > _TIE_NA or bound < -_TIE_NA):
        return _Solution(best.choice, best.slack_na, bound)
    # Branch and bound: every combination at least as good as the best so far lies in the
    # box that the relaxation allows at that slack (the relaxed optimum is concave in each
    # W_j, so per weight this is an interval). Boxes are shrunk to it, split in two along
    # their longest list of values, dropped when their relaxation cannot beat the best,
    # and enumerated once small.
    stack = [full]
    while stack:
        cand = stack.pop()
        floor = best.slack_na if exact else max(best.slack_na, 0.0)
        if not exact and best.slack_na > _TIE_NA:
            break
        tight = _tight_box(coef, need_na, _box(weights, cand), floor - _TIE_NA)
        if tight is None:
            continue
        cand = [
            c[(w.values[c] >= lo - _TIE_NA) & (w.values[c] <= hi + _TIE_NA)]
            for w, c, (lo, hi) in zip(weights, cand, tight, strict=True)
        ]
        sizes = [c.size for c in cand]
        if min(sizes) == 0:
            continue
        if np.prod(sizes, dtype=float) <= _ENUMERATE_BELOW:
            found = _best_of(coef, need_na, weights, cand)
            if found.slack_na > best.slack_na:
                best = found
            continue
        j = int(np.argmax(sizes))
        half = sizes[j] // 2
        for part in (cand[j][:half], cand[j][half:]):
            stack.append([*cand[:j], part, *cand[j + 1 :]])
    return _Solution(best.choice, best.slack_na, bound if not exact else best.slack_na)


_ENUMERATE_BELOW = 200_000
"""Boxes with fewer weight combinations than this are enumerated."""


def _box(weights: list[_Weights], cand: list[NDArray[np.int64]]) -> list[tuple[float, float]]:
    """The relaxation's box: per weight, the smallest and largest candidate value (nS)."""
    return [(float(w.values[c[0]]), float(w.values[c[-1]])) for w, c in zip(weights, cand, strict=True)]


def _best_of(
    coef: NDArray[np.float64],
    need_na: NDArray[np.float64],
    weights: list[_Weights],
    candidates: list[NDArray[np.int64]],
) -> _Solution:
    """The best combination of the candidate values (indices into each weight's sorted values)."""
    n_in = len(weights)
    half = n_in // 2
    # Contributions of the first and the last inputs to each pattern, combined in chunks.
    first = _partial(coef[:, :half], weights[:half], candidates[:half])
    last = _partial(coef[:, half:], weights[half:], candidates[half:])
    best_val, best_pair = -np.inf, (0, 0)
    chunk = max(1, 2_000_000 // max(last[0].shape[0] * coef.shape[0], 1))
    for start in range(0, first[0].shape[0], chunk):
        f = first[0][start : start + chunk]
        slack = np.min(f[:, None, :] + last[0][None, :, :] - need_na, axis=2)
        k = int(np.argmax(slack))
        i, j = divmod(k, slack.shape[1])
        if slack[i, j] > best_val:
            best_val, best_pair = float(slack[i, j]), (start + i, j)
    picks = np.r_[first[1][best_pair[0]], last[1][best_pair[1]]].astype(np.int64)
    choice = [w.choice(int(k)) for w, k in zip(weights, picks, strict=True)]
    return _Solution(choice, best_val, np.inf)


def _partial(
    coef: NDArray[np.float64], weights: list[_Weights], candidates: list[NDArray[np.int64]]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """All combinations of the candidates of some inputs: contributions (M, N) and their indices (M, k)."""
    if not weights:
        return np.zeros((1, coef.shape[0])), np.zeros((1, 0), dtype=np.int64)
    grids = np.meshgrid(*candidates, indexing="ij")
    idx = np.stack([g.ravel() for g in grids], axis=1)
    w = np.stack([wt.values[idx[:, j]] for j, wt in enumerate(weights)], axis=1)
    return w @ coef.T, idx


def _relaxed(
    coef: NDArray[np.float64], need_na: NDArray[np.float64], box: list[tuple[float, float]]
) -> tuple[NDArray[np.float64], float]:
    """Relaxed optimum: weights (nS) and the largest smallest slack (nA) over the box."""
    from scipy.optimize import linprog

    n_pat, n_in = coef.shape
    # Variables W, t: maximise t subject to t - coef_n . W <= -need_n.
    res = linprog(
        np.r_[np.zeros(n_in), -1.0],
        A_ub=np.c_[-coef, np.ones(n_pat)],
        b_ub=-need_na,
        bounds=[*box, (None, None)],
        method="highs",
    )
    if res.status != 0:  # pragma: no cover - the box is never empty
        raise RuntimeError(f"feasibility relaxation failed: {res.message}")
    return res.x[:-1], -float(res.fun)


def _tight_box(
    coef: NDArray[np.float64], need_na: NDArray[np.float64], box: list[tuple[float, float]], floor: float
) -> list[tuple[float, float]] | None:
    """Per weight, the interval of values the relaxation allows with every slack >= floor (nA)."""
    from scipy.optimize import linprog

    n_in = coef.shape[1]
    out = []
    for j in range(n_in):
        ends = []
        for sense in (1.0, -1.0):
            c = np.zeros(n_in)
            c[j] = sense
            res = linprog(c, A_ub=-coef, b_ub=-(need_na + floor), bounds=box, method="highs")
            ends.append(res.x[j] if res.status == 0 else np.nan)
        if np.isnan(ends).any():  # no combination reaches the floor, even relaxed
            return None
        out.append((ends[0], ends[1]))
    return out

"""The feasibility check agrees with an exhaustive search over every device position."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from crossbar_hil.training.feasibility import NeedSpec, check_feasibility, reachable_conductances
from crossbar_hil.training.task import Example, Task

TASK = Task.reference()


def brute_force_best_slack(
    task: Task, need: NeedSpec, g_now: np.ndarray, curve: np.ndarray, positions: np.ndarray, can_reset: bool
) -> np.ndarray:
    """Per neuron, the largest smallest slack (A) over every combination of reachable positions."""
    values, reachable = reachable_conductances(g_now, curve, positions, can_reset)
    v, targets = task.voltages("train"), task.targets("train")
    needs = need.needs_a(targets)
    out = []
    for i in range(task.n_outputs):
        s = np.where(targets[:, i] == 1, 1.0, -1.0)
        per_input = []
        for j in range(task.n_inputs):
            gp = values[j, 2 * i][reachable[j, 2 * i]]
            gm = values[j, 2 * i + 1][reachable[j, 2 * i + 1]]
            per_input.append((gp[:, None] - gm[None, :]).ravel())
        w = np.array(list(itertools.product(*per_input)))  # every reachable weight vector
        slack = (s[:, None] * v) @ w.T - needs[:, i][:, None]
        out.append(slack.min(axis=0).max())
    return np.array(out)


def small_crossbar(rng: np.random.Generator, n_pos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy, non-monotone curve (S, scaled like K = 10), shifts like the reference, positions."""
    curve = np.r_[0.0, np.cumsum(rng.normal(2e-7, 2e-7, n_pos - 1))]
    positions = rng.integers(0, n_pos, size=(4, 4))
    g_now = rng.uniform(1e-7, 1e-6, size=(4, 4)) + curve[positions]
    return g_now, curve, positions


def random_task(rng: np.random.Generator) -> Task:
    pats = rng.choice(16, size=6, replace=False)
    train = tuple(Example(pattern=f"{p:04b}", target="".join(rng.choice(["0", "1"], size=2))) for p in pats)
    return Task(train=train)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("can_reset", [True, False])
def test_best_slack_equals_exhaustive_search(seed: int, can_reset: bool) -> None:
    rng = np.random.default_rng(seed)
    task = TASK if seed % 2 == 0 else random_task(rng)
    g_now, curve, positions = small_crossbar(rng, n_pos=4)
    need = NeedSpec(beta=rng.uniform(3e6, 3e7), f_plus=0.8, f_minus=-0.8)
    truth = brute_force_best_slack(task, need, g_now, curve, positions, can_reset)
    report = check_feasibility(task, need, g_now, curve, positions, can_reset, exact=True)
    got = np.array([n.slack_a for n in report.neurons])
    np.testing.assert_allclose(got, truth, rtol=0, atol=1e-15)  # 1 fA
    for n in report.neurons:  # the returned positions are reachable and reach the reported slack
        assert can_reset or np.all(n.positions >= positions[:, 2 * n.neuron : 2 * n.neuron + 2])
        assert n.bound_a >= n.slack_a


@pytest.mark.parametrize("seed", range(16))
def test_verdict_equals_exhaustive_search_when_the_margin_is_tight(seed: int) -> None:
    # The gain is chosen so that the needed margin sits within a fraction of a nA of the
    # best reachable one, where a relaxation alone cannot decide.
    rng = np.random.default_rng(1000 + seed)
    g_now, curve, positions = small_crossbar(rng, n_pos=5)
    best = brute_force_best_slack(TASK, NeedSpec(np.inf, 0.8, -0.8), g_now, curve, positions, True)
    margin = abs(best.min())  # (a draw with no positive margin is infeasible at every gain)
    beta = np.arctanh(0.8) / (margin * (1 + rng.uniform(-2e-3, 2e-3)))
    need = NeedSpec(beta, 0.8, -0.8)
    truth = brute_force_best_slack(TASK, need, g_now, curve, positions, True)
    report = check_feasibility(TASK, need, g_now, curve, positions, can_reset=True)
    assert [n.feasible for n in report.neurons] == list(truth > 0)
    for n, t in zip(report.neurons, truth, strict=True):
        assert n.slack_a <= t + 1e-15 and n.bound_a >= t - 1e-15
        # The reported slack is what the named positions give, re-evaluated here.
        values, _ = reachable_conductances(g_now, curve, positions, True)
        cols = (2 * n.neuron, 2 * n.neuron + 1)
        w = np.array([values[j, cols[0], p] - values[j, cols[1], m] for j, (p, m) in enumerate(n.positions)])
        s = np.where(TASK.targets("train")[:, n.neuron] == 1, 1.0, -1.0)
        slack = s * (TASK.voltages("train") @ w) - n.needs_a
        assert slack.min() == pytest.approx(n.slack_a, abs=1e-18)


def test_without_reset_only_positions_above_the_current_one_count() -> None:
    curve = np.array([0.0, 5e-7, 1e-7])  # the last pulse falls back
    g_now = np.full((4, 4), 1e-7) + curve[1]
    positions = np.ones((4, 4), dtype=np.int64)
    values, reachable = reachable_conductances(g_now, curve, positions, can_reset=False)
    np.testing.assert_array_equal(reachable[0, 0], [False, True, True])
    np.testing.assert_allclose(values[0, 0], [1e-7, 6e-7, 2e-7])


def test_explanation_names_the_neuron_and_the_pattern_that_falls_short() -> None:
    # All devices alike and the curve flat: every weight is 0, so no pattern can clear its band.
    report = check_feasibility(
        TASK, NeedSpec(6e6, 0.8, -0.8), np.full((4, 4), 5e-7), np.zeros(3), can_reset=True
    )
    assert not report.feasible
    text = report.explain()
    assert "neuron 0: INFEASIBLE" in text and "neuron 1: INFEASIBLE" in text
    assert "183.1 nA short of the 183.1 nA it needs" in text


def per_device_crossbar(rng: np.random.Generator, n_pos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every device its own noisy curve (4, 4, n_pos) S, differing in shape and range, and positions."""
    steps = rng.normal(2e-7, 2e-7, size=(4, 4, n_pos - 1)) * rng.uniform(0.2, 2.0, size=(4, 4, 1))
    curves = np.concatenate([np.zeros((4, 4, 1)), np.cumsum(steps, axis=-1)], axis=-1)
    positions = rng.integers(0, n_pos, size=(4, 4))
    at = np.take_along_axis(curves, positions[..., None], axis=-1)[..., 0]
    return rng.uniform(1e-7, 1e-6, size=(4, 4)) + at, curves, positions


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("can_reset", [True, False])
def test_with_a_curve_per_device_the_best_slack_equals_exhaustive_search(seed: int, can_reset: bool) -> None:
    rng = np.random.default_rng(100 + seed)
    task = TASK if seed % 2 == 0 else random_task(rng)
    g_now, curves, positions = per_device_crossbar(rng, n_pos=4)
    need = NeedSpec(beta=rng.uniform(3e6, 3e7), f_plus=0.8, f_minus=-0.8)
    truth = brute_force_best_slack(task, need, g_now, curves, positions, can_reset)
    report = check_feasibility(task, need, g_now, curves, positions, can_reset, exact=True)
    np.testing.assert_allclose([n.slack_a for n in report.neurons], truth, rtol=0, atol=1e-15)
    assert report.feasible == bool(np.all(truth > 0))
    # The positions it names reach that slack on each device's own curve.
    for n in report.neurons:
        for j, (p_plus, p_minus) in enumerate(n.positions):
            for col, p in ((2 * n.neuron, p_plus), (2 * n.neuron + 1, p_minus)):
                assert can_reset or p >= positions[j, col]


def test_per_device_curves_are_not_the_first_devices_curve_for_all() -> None:
    """One device's own curve changes the verdict: the check does not use one curve for every device."""
    rng = np.random.default_rng(5)
    g_now, curves, _ = per_device_crossbar(rng, n_pos=4)
    need = NeedSpec(beta=1e7, f_plus=0.8, f_minus=-0.8)
    own = check_feasibility(TASK, need, g_now, curves, exact=True)
    shared = check_feasibility(TASK, need, g_now, curves[0, 0], exact=True)
    truth_shared = brute_force_best_slack(TASK, need, g_now, curves[0, 0], np.zeros((4, 4), int), True)
    np.testing.assert_allclose([n.slack_a for n in shared.neurons], truth_shared, rtol=0, atol=1e-15)
    assert [n.slack_a for n in own.neurons] != pytest.approx([n.slack_a for n in shared.neurons])


def test_one_curve_means_the_same_curve_for_every_device() -> None:
    rng = np.random.default_rng(9)
    g_now, curve, positions = small_crossbar(rng, n_pos=5)
    need = NeedSpec(beta=1e7, f_plus=0.8, f_minus=-0.8)
    one = check_feasibility(TASK, need, g_now, curve, positions, can_reset=False, exact=True)
    every = check_feasibility(
        TASK, need, g_now, np.broadcast_to(curve, (4, 4, curve.size)), positions, can_reset=False, exact=True
    )
    assert [n.slack_a for n in one.neurons] == [n.slack_a for n in every.neurons]


def test_curves_of_the_wrong_shape_are_refused_naming_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4, 5\).*\(4, 4\)"):
        reachable_conductances(np.zeros((4, 4)), np.zeros((3, 4, 5)))

"""Device curves: given per device or for all, and learned in situ from read-back alone."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar_hil.training.curves import LearnedCurves, builtin_relative_curve, device_curves


def test_one_curve_is_every_devices_curve_gained_from_its_first_point() -> None:
    got = device_curves([1e-7, 3e-7, 4e-7], (2, 3))
    assert got.shape == (2, 3, 3)
    np.testing.assert_array_equal(got[1, 2], [0.0, 2e-7, 3e-7])


def test_a_mapping_names_every_device_and_shorter_curves_stay_at_their_end() -> None:
    curves = {(0, 0): [0, 1, 2], (0, 1): [5, 7], (1, 0): [0, 1, 1], (1, 1): [0, 2, 4]}
    got = device_curves(curves, (2, 2))
    np.testing.assert_array_equal(got[0, 1], [0, 2, 2])
    np.testing.assert_array_equal(got[1, 1], [0, 2, 4])
    with pytest.raises(ValueError, match=r"no curve for device\(s\) \[\(1, 1\)\]"):
        device_curves({k: v for k, v in curves.items() if k != (1, 1)}, (2, 2))


def test_per_device_curves_must_fit_the_crossbar() -> None:
    with pytest.raises(ValueError, match=r"shape \(2, 2, 3\)"):
        device_curves(np.zeros((2, 2, 3)), (4, 4))
    with pytest.raises(ValueError, match="at least 2 positions"):
        device_curves([0.0], (4, 4))


def test_the_prior_is_the_builtin_model_scaled_to_each_devices_reset_level() -> None:
    g0 = np.array([[1e-7, 4e-7]])
    learned = LearnedCurves(g0)
    rel = builtin_relative_curve()
    np.testing.assert_allclose(learned.curves(), g0[..., None] * rel)
    assert not learned.observed.any()


def test_each_device_learns_its_own_scale_and_the_unmoved_take_the_median_of_the_moved() -> None:
    rel = np.array([0.0, 0.5, 0.8, 1.0])
    g0 = np.array([[1e-7, 2e-7, 4e-7]])
    true_scale = np.array([[3e-7, 6e-7, 0.0]])  # device 2 is never moved
    learned = LearnedCurves(g0, rel)
    pos = np.array([[1, 2, 0]])
    learned.observe(pos, g0 + true_scale * rel[pos])
    np.testing.assert_allclose(learned.scales()[0, :2], true_scale[0, :2])
    assert learned.scales()[0, 2] == pytest.approx(4.5e-7)  # the median of 3e-7 and 6e-7


def test_noisy_reads_average_out_over_the_positions_seen() -> None:
    rng = np.random.default_rng(0)
    rel = builtin_relative_curve()
    g0 = np.full((4, 4), 5e-7)
    scale = rng.uniform(5e-6, 1.5e-5, size=(4, 4))
    learned = LearnedCurves(g0, rel)
    for m in range(1, 20):
        pos = np.full((4, 4), m)
        learned.observe(pos, g0 + scale * rel[m] * (1 + rng.normal(0, 0.05, size=(4, 4))))
    np.testing.assert_allclose(learned.scales(), scale, rtol=0.05)

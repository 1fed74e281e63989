"""The tile network learns with every bench rule; the output-error dead zone is a parameter."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar_hil.emulator.devices import ExponentialDevice
from crossbar_hil.emulator.network.data import digits
from crossbar_hil.emulator.network.mlp import NetworkConfig, TileNetwork, hard_sigmoid
from crossbar_hil.emulator.network.tile_rules import RuleConfig


def data() -> tuple[np.ndarray, ...]:
    """500 training and 300 test images of scikit-learn's bundled digits (no download)."""
    d = digits()
    return d.x_train[:500], d.y_train[:500], d.x_test[:300], d.y_test[:300]


def device(levels: int) -> ExponentialDevice:
    return ExponentialDevice(
        g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=1e-7 / levels, beta_nl=0.0, n_max=levels
    )


def fit(rule: str, levels: int = 64, dead_zone: float = 0.1, epochs: int = 1, seed: int = 0):
    net = TileNetwork(
        NetworkConfig(
            sizes=(64, 24, 10),
            hidden_c=1.0,
            output_gain=8.0,
            output_dead_zone=dead_zone,
            epochs=epochs,
            seed=seed,
        ),
        {"device": device(levels), "depression": rule == "method_c"},
        RuleConfig(rule=rule),
    )
    x, y, xt, yt = data()
    before = net.accuracy(xt, yt)
    return before, net.fit(x, y, xt, yt), net


@pytest.mark.parametrize("rule", ["method_a", "method_b", "method_c"])
def test_each_lim_method_learns_a_small_two_layer_problem(rule: str) -> None:
    before, result, _ = fit(rule)
    assert result.test_accuracy > before + 0.15


def test_manhattan_learns_while_its_devices_have_range_left() -> None:
    """Potentiation only: with 256 levels Manhattan learns; at 64 levels over 4 epochs its
    devices climb to saturation and it unlearns (the problem methods a, b, c solve)."""
    before, long_range, _ = fit("manhattan", levels=256)
    _, short, net = fit("manhattan", levels=64, epochs=4)
    assert long_range.test_accuracy > before + 0.2
    assert np.mean(net.tiles[1].positions() == 64) > 0.5
    assert short.test_accuracy < long_range.test_accuracy - 0.2


def test_the_dead_zone_drops_small_output_errors_from_the_update() -> None:
    net = TileNetwork(NetworkConfig(sizes=(2, 2, 3), output_dead_zone=0.2), {"device": device(8)})
    sums = [np.zeros((1, 2)), np.log(np.array([[0.85, 0.1, 0.05]]))]
    out_error = net.errors(sums, np.array([[1.0, 0.0, 0.0]]))[-1]
    np.testing.assert_allclose(out_error, [[0.0, 0.0, 0.0]])  # |p - t| = 0.15, 0.1, 0.05 < 0.2
    literal = TileNetwork(NetworkConfig(sizes=(2, 2, 3)), {"device": device(8)})
    np.testing.assert_allclose(literal.errors(sums, np.array([[1.0, 0.0, 0.0]]))[-1], [[-0.15, 0.1, 0.05]])
    with pytest.raises(ValueError, match="output_dead_zone"):
        NetworkConfig(output_dead_zone=1.5)


def test_the_literal_rule_sends_more_and_learns_less_than_with_the_dead_zone() -> None:
    """dead zone 0: each sample moves every output weight (the non-targets down)."""
    _, literal, _ = fit("method_b", dead_zone=0.0)
    _, zoned, _ = fit("method_b", dead_zone=0.1)
    assert zoned.pulses < literal.pulses
    assert zoned.test_accuracy > literal.test_accuracy


def test_training_is_reproducible_from_the_seed() -> None:
    a = fit("method_b", seed=3)[1]
    b = fit("method_b", seed=3)[1]
    c = fit("method_b", seed=4)[1]
    assert (a.test_accuracy, a.pulses, a.resets) == (b.test_accuracy, b.pulses, b.resets)
    assert (a.pulses, a.resets) != (c.pulses, c.resets)


def test_hard_sigmoid_is_linear_inside_its_band_and_flat_outside() -> None:
    s = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(hard_sigmoid(s, 1.0), [0.0, 0.0, 0.5, 0.75, 1.0, 1.0])


@pytest.mark.parametrize("rule", ["method_b", "method_c"])
def test_mini_batch_updates_learn_with_one_update_per_batch(rule: str) -> None:
    """batch_size 4: the sign of the summed update, one step per weight per batch."""
    net = TileNetwork(
        NetworkConfig(sizes=(64, 24, 10), hidden_c=1.0, output_gain=8.0, output_dead_zone=0.1, batch_size=4),
        {"device": device(64), "depression": rule == "method_c"},
        RuleConfig(rule=rule),
    )
    x, y, xt, yt = data()
    before = net.accuracy(xt, yt)
    result = net.fit(x, y, xt, yt)
    assert result.test_accuracy > before + 0.15


@pytest.mark.parametrize("rule", ["manhattan", "method_b", "method_c"])
def test_an_online_step_sends_the_update_of_its_full_sign_matrix(rule: str) -> None:
    """A batch-1 step sends only the block of rows with input x columns with error; the tiles
    end exactly where the full sign matrix ``(a > 0) x -sgn(delta)`` through ``rule.update`` puts them."""

    def network() -> TileNetwork:
        return TileNetwork(
            NetworkConfig(sizes=(64, 24, 10), hidden_c=1.0, output_gain=8.0, output_dead_zone=0.1),
            {"device": device(16), "depression": rule == "method_c", "range_sigma": 0.3},
            RuleConfig(rule=rule),
        )

    online, reference = network(), network()
    x, y, _, _ = data()
    onehot = np.eye(10)[y]
    for n in range(150):
        online.step(x[n : n + 1], onehot[n : n + 1])
        acts, sums = reference.forward(x[n : n + 1])
        for r, a, d in zip(reference.rules, acts, reference.errors(sums, onehot[n : n + 1]), strict=True):
            r.update(((a[0] > 0)[:, None] * -np.sign(d[0])[None, :]).astype(np.int8))
    for mine, theirs in zip(online.tiles, reference.tiles, strict=True):
        np.testing.assert_array_equal(mine.conductances(), theirs.conductances())
    assert sum(r.counts.resets + r.counts.depressions for r in online.rules) > 0 or rule == "manhattan"

"""The small LeNet-5 on self-adaptive tiles: convolutions as tile VMMs, its gradient, its learning."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar_hil.emulator.network.cnn import CONV2, Conv, HuangCNN, conv_backward, conv_forward
from crossbar_hil.emulator.network.data import digits
from crossbar_hil.emulator.network.huang_device import huang_device
from crossbar_hil.emulator.network.mlp import NetworkConfig, softmax
from crossbar_hil.emulator.network.self_adaptive import MODES, Mode, SelfAdaptiveTile
from crossbar_hil.emulator.network.tiles import TileConfig

DEVICE = huang_device(2.0, -2.0, bits=6)
READ_V = 0.05


def programmed(conv: Conv, seed: int = 0) -> tuple[SelfAdaptiveTile, np.ndarray]:
    """A tile for ``conv`` with random weights, and those weights as (c_out, c_in, k, k) and bias."""
    tile = SelfAdaptiveTile(TileConfig(rows=conv.rows, cols=conv.c_out, device=DEVICE, seed=seed))
    rng = np.random.default_rng(seed)
    shape = tile.shape
    tile.program(rng.choice([-1, 1], size=shape), rng.random(shape), rng.random(shape))
    return tile, tile.weights_siemens() / tile.g_span_siemens


def test_a_convolution_read_on_its_tile_is_numpys_convolution_of_the_tile_weights() -> None:
    conv = Conv(c_in=3, c_out=5, h=6, w=5, k=3, pad=1)
    tile, w = programmed(conv)
    kernel, bias = w[:-1].T.reshape(5, 3, 3, 3), w[-1]
    x = np.random.default_rng(1).random((2, 3, 6, 5))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 5, 6, 5))
    for y in range(6):
        for z in range(5):
            expected[:, :, y, z] = np.einsum("ncij,ocij->no", xp[:, :, y : y + 3, z : z + 3], kernel) + bias
    np.testing.assert_allclose(conv_forward(tile, conv, x, READ_V), expected, rtol=1e-10, atol=1e-12)


def test_the_transposed_read_of_a_convolution_tile_is_the_transposed_convolution() -> None:
    conv = Conv(c_in=2, c_out=4, h=5, w=4, k=3, pad=1)
    tile, w = programmed(conv, seed=3)
    kernel = w[:-1].T.reshape(4, 2, 3, 3)
    delta = np.random.default_rng(4).normal(size=(2, 4, 5, 4))
    expected = np.zeros((2, 2, 7, 6))  # on the padded input, then cropped
    for y in range(5):
        for z in range(4):
            expected[:, :, y : y + 3, z : z + 3] += np.einsum("no,ocij->ncij", delta[:, :, y, z], kernel)
    got = conv_backward(tile, conv, delta, READ_V)
    np.testing.assert_allclose(got, expected[:, :, 1:-1, 1:-1], rtol=1e-10, atol=1e-12)
    # The adjoint of the forward read without its bias: <conv(x), d> = <x, conv^T(d)>.
    x = np.random.default_rng(5).random((2, 2, 5, 4))
    bias_part = np.einsum("nohw,o->", delta, w[-1])
    lhs = np.sum(conv_forward(tile, conv, x, READ_V) * delta) - bias_part
    assert lhs == pytest.approx(np.sum(x * got), rel=1e-10)


def test_the_errors_are_the_gradient_of_the_cross_entropy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finite differences of the loss in each tile's weights equal ``gain * inputs^T errors``."""
    net = NetworkConfig(sizes=(64, 10), output_gain=3.0, seed=2)
    cnn = HuangCNN(net, "mode2", {"device": DEVICE})
    data = digits()
    x, y = data.x_train[:3], data.y_train[:3]
    weights = [t.weights_siemens().copy() for t in cnn.tiles]
    for tile, w in zip(cnn.tiles, weights, strict=True):
        monkeypatch.setattr(tile, "weights_siemens", lambda w=w: w)

    def loss() -> float:
        p = softmax(net.output_gain * cnn.forward(x)[1][-1])
        return float(-np.log(p[np.arange(3), y]).sum())

    inputs, sums = cnn.forward(x)
    errors = cnn.errors(sums, np.eye(10)[y])
    span = cnn.tiles[0].g_span_siemens
    rng = np.random.default_rng(0)
    for k, (w, gain) in enumerate(zip(weights, cnn.gains, strict=True)):
        grad = net.output_gain * gain / span * inputs[k].T @ errors[k]
        for _ in range(4):
            i, j = rng.integers(w.shape[0]), rng.integers(w.shape[1])
            h = 1e-5 * span
            w[i, j] += h
            up = loss()
            w[i, j] -= 2 * h
            down = loss()
            w[i, j] += h
            assert (up - down) / (2 * h) == pytest.approx(grad[i, j], rel=1e-4, abs=1e-6 * np.abs(grad).max())


def test_the_tiles_are_the_documented_architecture() -> None:
    cnn = HuangCNN(NetworkConfig(sizes=(64, 10)), "mode1", {"device": DEVICE})
    assert [t.shape for t in cnn.tiles] == [(10, 6), (55, 16), (65, 120), (121, 84), (85, 10)]
    assert CONV2.out_hw == (4, 4)
    with pytest.raises(ValueError, match="sizes"):
        HuangCNN(NetworkConfig(sizes=(64, 20, 10)), "mode1", {"device": DEVICE})


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_trains_the_cnn_well_above_chance(mode: Mode) -> None:
    """600 digits, batch 16, four epochs: chance is 10 %; seeds 0..2 reach 30-73 %."""
    d = digits()
    net = NetworkConfig(sizes=(64, 10), output_gain=4.0, batch_size=16, epochs=4, seed=0)
    cnn = HuangCNN(net, mode, {"device": huang_device(1.0, -1.0, 8)})
    assert cnn.fit(d.x_train[:600], d.y_train[:600], d.x_test, d.y_test).test_accuracy > 0.3

"""A small LeNet-5 on self-adaptive tiles (Huang et al.'s network, shrunk to 8x8 inputs).

Architecture (input 1 x 8 x 8, the digits; Huang's LeNet-5 on 28x28 MNIST has 5x5 kernels
without padding, 6 and 16 channels, then 120, 84 and 10 units):

====== =================================== ============ =================
layer  operation                           output       tile (rows x cols)
====== =================================== ============ =================
conv1  3x3, 1 -> 6 channels, padding 1     6 x 8 x 8    10 x 6
       ReLU, max-pool 2x2                  6 x 4 x 4
conv2  3x3, 6 -> 16 channels, padding 1    16 x 4 x 4   55 x 16
       ReLU, max-pool 2x2                  16 x 2 x 2
fc1    64 -> 120, ReLU                     120          65 x 120
fc2    120 -> 84, ReLU                     84           121 x 84
fc3    84 -> 10, softmax + cross-entropy   10           85 x 10
====== =================================== ============ =================

(each tile's last row is the bias input, always 1). A convolution is a VMM on its tile via
im2col: every ``c_in x 3 x 3`` patch (and the bias 1) drives the rows, the columns give the
``c_out`` channels at that position; its backward pass is the transposed read of the same tile
with the errors on the columns, summed back onto the input by col2im. So every tile read and
every update is the one the MLP does (:class:`~crossbar_hil.emulator.network.self_adaptive.SelfAdaptiveMLP`):
``Tile.forward`` / ``Tile.backward`` at ``read_v`` and :class:`~.self_adaptive.ModeRule` with the
signs ``-sgn(sum over samples and positions of input x error)``.

Each layer's weighted sum is read in weight units (one ``w2`` span), times the layer's gain
``1 / sqrt(fan_in)`` (the gain of its read-out amplifier; Huang scales the FC sums by 0.01,
0.1 and 0.5 for the same purpose), the output's also times ``output_gain``. The settings are a
:class:`~crossbar_hil.emulator.network.mlp.NetworkConfig`: ``sizes`` must be ``(64, 10)``
(inputs, classes); ``hidden_c`` and ``init_fraction`` are not used (ReLU; Huang's initialisation,
with ``fan_in`` a patch's inputs for a convolution: the SI's ``sqrt(2 / CHin)`` would be
``sqrt(2)`` for the first layer, which clips most ``w1`` at Gmin or Gmax).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.emulator.network.mlp import softmax
from crossbar_hil.emulator.network.self_adaptive import SelfAdaptiveMLP
from crossbar_hil.emulator.network.tiles import Tile

SIDE = 8
"""Input images are ``SIDE x SIDE``, one channel."""


def im2col(x: NDArray[np.float64], k: int, pad: int) -> NDArray[np.float64]:
    """Patches of ``x`` (N, C, H, W) for a ``k x k`` kernel, stride 1: (N * Ho * Wo, C * k * k),
    rows in (n, y, x) order, columns in (c, i, j) order (the kernel's flattening)."""
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # (N, C, Ho, Wo, k, k)
    ho, wo = win.shape[2], win.shape[3]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)


def col2im(
    cols: NDArray[np.float64], shape: tuple[int, int, int, int], k: int, pad: int
) -> NDArray[np.float64]:
    """The adjoint of :func:`im2col`: patch values (N * Ho * Wo, C * k * k) summed back onto an
    image of ``shape`` (N, C, H, W)."""
    n, c, h, w = shape
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    patches = cols.reshape(n, ho, wo, c, k, k)
    out = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for i in range(k):
        for j in range(k):
            out[:, :, i : i + ho, j : j + wo] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return out[:, :, pad : pad + h, pad : pad + w]


@dataclass(frozen=True)
class Conv:
    """A ``k x k`` convolution, stride 1, of ``c_in`` to ``c_out`` channels on an ``h x w`` input."""

    c_in: int
    c_out: int
    h: int
    w: int
    k: int = 3
    pad: int = 1

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width."""
        return self.h + 2 * self.pad - self.k + 1, self.w + 2 * self.pad - self.k + 1

    @property
    def rows(self) -> int:
        """Tile rows: one per kernel weight of a patch, and the bias."""
        return self.c_in * self.k * self.k + 1


def with_bias(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """``a`` (..., n) with a last input of 1 (the bias row)."""
    return np.concatenate((a, np.ones((*a.shape[:-1], 1))), axis=-1)


def read(tile: Tile, a: NDArray[np.float64], read_v: float) -> NDArray[np.float64]:
    """Weighted sums (weight units) of inputs ``a`` (..., rows) on ``tile``: a forward read at ``read_v``."""
    return tile.forward(a * read_v) / (read_v * tile.g_span_siemens)


def read_back(tile: Tile, delta: NDArray[np.float64], read_v: float) -> NDArray[np.float64]:
    """Row sums (weight units) of errors ``delta`` (..., cols) on ``tile``: the transposed read."""
    return tile.backward(delta * read_v) / (read_v * tile.g_span_siemens)


def conv_forward(tile: Tile, conv: Conv, x: NDArray[np.float64], read_v: float) -> NDArray[np.float64]:
    """The convolution of ``x`` (N, c_in, h, w) by ``tile``'s weights (weight units): (N, c_out, Ho, Wo)."""
    ho, wo = conv.out_hw
    s = read(tile, with_bias(im2col(x, conv.k, conv.pad)), read_v)
    return s.reshape(x.shape[0], ho, wo, conv.c_out).transpose(0, 3, 1, 2)


def conv_backward(tile: Tile, conv: Conv, delta: NDArray[np.float64], read_v: float) -> NDArray[np.float64]:
    """The transposed convolution of errors ``delta`` (N, c_out, Ho, Wo): (N, c_in, h, w), bias dropped."""
    n = delta.shape[0]
    back = read_back(tile, delta.transpose(0, 2, 3, 1).reshape(-1, conv.c_out), read_v)
    return col2im(back[:, :-1], (n, conv.c_in, conv.h, conv.w), conv.k, conv.pad)


def max_pool(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """2x2 max-pooling of ``x`` (N, C, H, W) with H, W even; the output and the mask of the maxima
    (one per window, the first in row order on ties), shaped like ``x``."""
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    arg = win.argmax(axis=-1)
    mask = np.zeros(win.shape, dtype=bool)
    np.put_along_axis(mask, arg[..., None], True, axis=-1)
    mask_x = mask.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)
    return win.max(axis=-1), mask_x


def unpool(delta: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Errors of a 2x2 max-pool's output (N, C, H/2, W/2) routed to its maxima (``mask``)."""
    return np.repeat(np.repeat(delta, 2, axis=2), 2, axis=3) * mask


CONV1 = Conv(c_in=1, c_out=6, h=SIDE, w=SIDE)
CONV2 = Conv(c_in=6, c_out=16, h=SIDE // 2, w=SIDE // 2)
FC = ((16 * (SIDE // 4) ** 2, 120), (120, 84), (84, 10))
"""(inputs, outputs) of fc1, fc2, fc3."""


class HuangCNN(SelfAdaptiveMLP):
    """The LeNet-5 of the module docstring on :class:`SelfAdaptiveTile` layers, trained by ``mode``.

    A :class:`SelfAdaptiveMLP` whose layers are the table's tiles: it inherits the tiles, the
    initialisation, the mode rules, the update step (``-sgn(inputs^T errors)`` per tile), the
    epoch loop and the accuracy, and has its own forward and backward passes.
    """

    def layer_shapes(self) -> list[tuple[int, int]]:
        if self.net.sizes != (SIDE * SIDE, FC[-1][1]):
            raise ValueError(
                f"sizes={self.net.sizes}: the CNN takes {SIDE}x{SIDE} inputs and 10 classes: (64, 10)"
            )
        return [(CONV1.rows, CONV1.c_out), (CONV2.rows, CONV2.c_out), *((i + 1, o) for i, o in FC)]

    @property
    def gains(self) -> list[float]:
        """Each layer's read-out gain, ``1 / sqrt(fan_in)``."""
        return [1.0 / np.sqrt(t.shape[0] - 1) for t in self.tiles]

    def forward(self, x: NDArray[np.float64]) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]]]:
        """Inputs of every tile (one row per sample, or per patch of a convolution, bias included)
        and every layer's weighted sums times its gain (conv: (N, C, H, W)); ``x`` (N, 64) in [0, 1].
        The last sums are the output's (N, 10)."""
        v, n, gains = self.net.read_v, x.shape[0], self.gains
        a: NDArray[np.float64] = x.reshape(n, 1, SIDE, SIDE)
        inputs, sums = [], []
        for k, conv in enumerate((CONV1, CONV2)):
            inputs.append(with_bias(im2col(a, conv.k, conv.pad)))
            sums.append(gains[k] * conv_forward(self.tiles[k], conv, a, v))
            a = max_pool(np.maximum(sums[-1], 0.0))[0]
        a = a.reshape(n, -1)
        for k in range(2, 5):
            inputs.append(with_bias(a))
            sums.append(gains[k] * read(self.tiles[k], inputs[-1], v))
            a = np.maximum(sums[-1], 0.0)
        return inputs, sums

    def errors(
        self, sums: list[NDArray[np.float64]], targets: NDArray[np.float64]
    ) -> list[NDArray[np.float64]]:
        """Per tile the errors of its outputs, one row per row of its inputs: the output's ``p - t``
        after the dead zone, then back through fc3..fc1 (transposed reads, ReLU), the pools and the
        convolutions (transposed reads of the conv tiles, col2im)."""
        net, v, gains = self.net, self.net.read_v, self.gains
        delta = softmax(net.output_gain * sums[-1]) - targets
        if net.output_dead_zone > 0:
            delta = np.where(np.abs(delta) < net.output_dead_zone, 0.0, delta)
        out = [delta]
        for k in (4, 3):  # into fc2's and fc1's outputs
            delta = read_back(self.tiles[k], gains[k] * delta, v)[:, :-1] * (sums[k - 1] > 0)
            out.append(delta)
        n = delta.shape[0]
        back = read_back(self.tiles[2], gains[2] * delta, v)[:, :-1]  # into conv2's pooled output
        for k, conv in ((1, CONV2), (0, CONV1)):
            ho, wo = conv.out_hw
            mask = max_pool(np.maximum(sums[k], 0.0))[1]
            d_conv = unpool(back.reshape(n, conv.c_out, ho // 2, wo // 2), mask) * (sums[k] > 0)
            out.append(d_conv.transpose(0, 2, 3, 1).reshape(-1, conv.c_out))
            if k > 0:
                back = conv_backward(self.tiles[k], conv, gains[k] * d_conv, v)
        return out[::-1]

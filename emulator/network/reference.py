"""The software reference: the same network in floating point, trained by plain SGD.

Same layers as :class:`~crossbar_hil.emulator.network.mlp.TileNetwork` (hard-sigmoid
hidden layers, softmax + cross-entropy, a bias input per layer), weights as numpy
floats updated by ``-learning_rate * a delta``: Lim et al.'s "SW-based BP" and the
arithmetic floor of ``benchmarks/bench_network.py``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.emulator.network.mlp import NetworkConfig, hard_sigmoid, softmax, train_epochs


class FloatMLP:
    """A float MLP of ``net.sizes``; weights drawn from the network seed's generator."""

    def __init__(self, net: NetworkConfig, learning_rate: float = 0.01) -> None:
        self.net, self.learning_rate = net, learning_rate
        self.rng = np.random.default_rng(np.random.SeedSequence([net.seed, 2_000_003]))
        self.weights = [
            self.rng.normal(0.0, 1.0 / np.sqrt(n_in + 1), size=(n_in + 1, n_out))
            for n_in, n_out in zip(net.sizes[:-1], net.sizes[1:], strict=True)
        ]

    def step(self, x: NDArray[np.float64], targets: NDArray[np.float64]) -> None:
        """One SGD update from samples ``x`` (B, n_in) and one-hot ``targets`` (B, n_classes)."""
        c, acts, sums = self.net.hidden_c, [], []
        a = x
        for k, w in enumerate(self.weights):
            a = np.concatenate((a, np.ones((a.shape[0], 1))), axis=1)
            acts.append(a)
            s = a @ w
            sums.append(s)
            if k < len(self.weights) - 1:
                a = hard_sigmoid(s, c)
        delta = softmax(self.net.output_gain * sums[-1]) - targets
        for k in range(len(self.weights) - 1, -1, -1):
            grad = acts[k].T @ delta
            if k > 0:
                delta = (delta @ self.weights[k].T)[:, :-1] * (np.abs(sums[k - 1]) < c) / (2 * c)
            self.weights[k] -= self.learning_rate * grad

    def accuracy(self, x: NDArray[np.float64], y: NDArray[np.int64]) -> float:
        """Share of samples whose largest output is the label."""
        a = x
        for k, w in enumerate(self.weights):
            s = np.concatenate((a, np.ones((a.shape[0], 1))), axis=1) @ w
            a = hard_sigmoid(s, self.net.hidden_c) if k < len(self.weights) - 1 else s
        return float(np.mean(np.argmax(a, axis=1) == y))

    def fit(
        self,
        x_train: NDArray[np.float64],
        y_train: NDArray[np.int64],
        x_test: NDArray[np.float64],
        y_test: NDArray[np.int64],
    ) -> float:
        """Train ``net.epochs`` passes in the generator's order; the test accuracy."""
        train_epochs(self.net, self.rng, self.step, x_train, y_train, lambda: 0.0)
        return self.accuracy(x_test, y_test)

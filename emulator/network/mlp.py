"""A multi-layer perceptron trained in situ on emulated tiles (Lim et al.'s hardware BP).

Layer ``l`` is one :class:`~crossbar_hil.emulator.network.tiles.Tile` of ``(n_in + 1) x n_out``
weights (the last row is the bias input, always 1). Every computation on weights is a
tile read:

* forward: the activations, as row voltages ``a * read_v`` (V), give column currents
  (A); divided by ``read_v * g_span`` they are the weighted sums ``s`` in weight units
  (one unit = one device's full conductance span);
* hidden layers: the hard sigmoid ``f(s) = clip(1/2 + s / (2c), 0, 1)``; its derivative
  is taken as 1 inside the linear band ``|s| < c`` and 0 outside (Lim et al.: only signs
  matter, so ``1/(2c)`` may be replaced by 1);
* output: softmax of ``output_gain * s`` with cross-entropy, so the output error is
  ``delta = p - t``;
* backward: the errors, as column voltages, give row currents (the transposed read);
  times the hidden derivative they are the hidden errors.

Updates are sign-only, one device step per weight (the rule decides what a step is):
``sgn(dW_ij) = -sgn(delta_j)`` where the input ``a_i > 0`` (online, ``batch_size`` 1), or
``-sgn(sum_n delta_nj a_ni)`` per mini-batch.

The output-error dead zone. Read literally, the sign-only rule moves every output
weight on every sample: the 9 non-target outputs of a softmax always have
``delta > 0``, so each sample pulses their ``G-`` devices, and the output weights are
driven to the floor of their range (with potentiation only, every device towards
saturation). ``output_dead_zone`` (default 0: the literal rule) drops the output errors
with ``|delta| <`` that value from the update and from the backward pass, so a class
already predicted with confidence stops pulsing. The experiment shows both.

Every random draw (initial pulses, sample order) comes from a seeded
``numpy.random.Generator``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from crossbar_hil.emulator.network.tile_rules import RuleConfig, TileRule, make_rule
from crossbar_hil.emulator.network.tiles import Tile, TileConfig


class NetworkConfig(BaseModel):
    """The network and its training, apart from the devices (:class:`TileConfig`) and rule."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    sizes: tuple[int, ...] = Field((64, 100, 10), description="Neurons per layer, input first, no bias.")
    hidden_c: float = Field(4.0, gt=0, description="Hard-sigmoid half-width c, in weight units (-).")
    output_gain: float = Field(1.0, gt=0, description="Softmax input per weight unit of output sum (-).")
    output_dead_zone: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Output errors |p - t| below this give no update (0: the literal sign rule, "
        "which drives the output weights to their floor; see the module docstring).",
    )
    batch_size: int = Field(1, ge=1, le=100_000, description="Samples per update (1: online, as Lim).")
    epochs: int = Field(1, ge=1, le=1000, description="Passes over the training set.")
    init_fraction: float = Field(
        0.25, ge=0, le=1, description="Each device starts after a uniform 0..this share of n_max pulses."
    )
    read_v: float = Field(0.05, gt=0, description="Voltage of activation 1 on a row (V).")
    seed: int = Field(
        0, ge=0, le=2**63 - 1, description="Seed of the initial pulses, the sample order and the tiles."
    )

    @field_validator("sizes")
    @classmethod
    def _two_layers(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(v) < 2 or min(v) < 1:
            raise ValueError(f"sizes needs at least an input and an output layer, each >= 1; got {v}")
        return v


def hard_sigmoid(s: NDArray[np.float64], c: float) -> NDArray[np.float64]:
    """``clip(1/2 + s / (2c), 0, 1)`` (Lim et al.'s hard sigmoid, centred)."""
    return np.clip(0.5 + s / (2.0 * c), 0.0, 1.0)


def softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Softmax over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def tile_seed(seed: int, layer: int) -> int:
    """The seed of layer ``layer``'s tile for network seed ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, layer]).generate_state(1)[0])


def train_epochs(
    net: NetworkConfig,
    rng: np.random.Generator,
    step: Callable[[NDArray[np.float64], NDArray[np.float64]], None],
    x_train: NDArray[np.float64],
    y_train: NDArray[np.int64],
    after_epoch: Callable[[], float],
) -> list[float]:
    """``net.epochs`` passes of ``step(samples, one-hot targets)`` over mini-batches of ``net.batch_size``
    in a new order each (drawn from ``rng``); ``after_epoch()`` after each pass, its values returned."""
    onehot = np.eye(net.sizes[-1])[y_train]
    out = []
    for _ in range(net.epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), net.batch_size):
            pick = order[start : start + net.batch_size]
            step(x_train[pick], onehot[pick])
        out.append(after_epoch())
    return out


@dataclass
class TrainResult:
    """Outcome of :meth:`TileNetwork.fit`."""

    test_accuracy: float
    train_accuracy: float
    samples: int
    pulses: int
    """Programming pulses, depressing ones included (:class:`~.tile_rules.Counts`)."""
    resets: int
    depressions: int = 0
    """Depressing pulses (part of ``pulses``)."""
    accuracy_per_epoch: list[float] = field(default_factory=list)


class TileNetwork:
    """Layers of tiles and their rules; see the module docstring.

    ``devices`` is a :class:`TileConfig` without ``rows``/``cols``/``seed`` (as a dict).
    """

    def __init__(
        self,
        net: NetworkConfig,
        devices: dict | None = None,
        rule: RuleConfig | None = None,
        table: NDArray[np.float64] | None = None,
    ) -> None:
        self.net = net
        self.rule_config = rule or RuleConfig()
        devices = dict(devices or {})
        self.tiles: list[Tile] = []
        for layer, (rows, cols) in enumerate(self.layer_shapes()):
            cfg = TileConfig(rows=rows, cols=cols, seed=tile_seed(net.seed, layer), **devices)
            self.tiles.append(self.new_tile(cfg, table))
        self.rng = np.random.default_rng(np.random.SeedSequence([net.seed, 1_000_003]))
        self.initialise()
        self.rules: list[TileRule] = [self.new_rule(t) for t in self.tiles]

    # ------------------------------------------------------------ hooks of a weight scheme
    # (Huang's self-adaptive weight overrides them: :mod:`.self_adaptive`; the CNN: :mod:`.cnn`.)
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(rows, cols) of every layer's tile: its inputs and the bias row, its outputs."""
        sizes = self.net.sizes
        return [(n_in + 1, n_out) for n_in, n_out in itertools.pairwise(sizes)]

    def new_tile(self, cfg: TileConfig, table: NDArray[np.float64] | None) -> Tile:
        """The tile of one layer: a differential pair per weight."""
        return Tile(cfg, table)

    def initialise(self) -> None:
        """Each device after a uniform 0..``init_fraction * n_max`` pulses from reset (``self.rng``)."""
        top = round(self.net.init_fraction * self.tiles[0].state.n_max)
        for tile in self.tiles:
            tile.potentiate(self.rng.integers(0, top + 1, size=tile.state.position.shape))

    def new_rule(self, tile: Tile) -> TileRule:
        """The update rule of one layer's tile."""
        return make_rule(tile, self.rule_config)

    # ------------------------------------------------------------ forward / backward
    def forward(self, x: NDArray[np.float64]) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]]]:
        """Activations with bias (inputs of each tile) and weighted sums (weight units), per layer.

        ``x`` (..., n_in) in [0, 1]. The last entry of the sums is the output layer's.
        """
        net = self.net
        acts, sums = [], []
        a = x
        for k, tile in enumerate(self.tiles):
            a = np.concatenate((a, np.ones((*a.shape[:-1], 1))), axis=-1)
            acts.append(a)
            s = tile.forward(a * net.read_v) / (net.read_v * tile.g_span_siemens)
            sums.append(s)
            if k < len(self.tiles) - 1:
                a = hard_sigmoid(s, net.hidden_c)
        return acts, sums

    def probabilities(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Class probabilities (..., n_classes) from the tiles."""
        return softmax(self.net.output_gain * self.forward(x)[1][-1])

    def accuracy(self, x: NDArray[np.float64], y: NDArray[np.int64]) -> float:
        """Share of samples whose most probable class is the label."""
        return float(np.mean(np.argmax(self.forward(x)[1][-1], axis=-1) == y))

    def errors(
        self, sums: list[NDArray[np.float64]], targets: NDArray[np.float64]
    ) -> list[NDArray[np.float64]]:
        """Per layer the errors of its outputs (..., n_out): the output's ``p - t`` after the dead
        zone, then each hidden layer's from the transposed read of the layer above."""
        net = self.net
        delta = softmax(net.output_gain * sums[-1]) - targets
        if net.output_dead_zone > 0:
            delta = np.where(np.abs(delta) < net.output_dead_zone, 0.0, delta)
        out = [delta]
        for k in range(len(self.tiles) - 1, 0, -1):
            tile = self.tiles[k]
            back = tile.backward(delta * net.read_v) / (net.read_v * tile.g_span_siemens)
            delta = back[..., :-1] * (np.abs(sums[k - 1]) < net.hidden_c)
            out.append(delta)
        return out[::-1]

    def step(self, x: NDArray[np.float64], targets: NDArray[np.float64]) -> None:
        """One update from the samples ``x`` (B, n_in) with one-hot ``targets`` (B, n_classes)."""
        acts, sums = self.forward(x)
        deltas = self.errors(sums, targets)
        for rule, a, d in zip(self.rules, acts, deltas, strict=True):
            if a.shape[0] == 1:  # online: the moving weights are the rows with input x the columns with error
                cols = np.flatnonzero(d[0])
                rows = np.flatnonzero(a[0] > 0) if cols.size else cols
                rule.update_outer(rows, cols, d[0, cols] < 0)
            else:
                rule.update(-np.sign(a.T @ d).astype(np.int8))

    def fit(
        self,
        x_train: NDArray[np.float64],
        y_train: NDArray[np.int64],
        x_test: NDArray[np.float64],
        y_test: NDArray[np.int64],
    ) -> TrainResult:
        """Train ``epochs`` passes (a new sample order each, from the network's generator); test."""
        net = self.net
        per_epoch = train_epochs(
            net, self.rng, self.step, x_train, y_train, lambda: self.accuracy(x_test, y_test)
        )
        return TrainResult(
            test_accuracy=per_epoch[-1],
            train_accuracy=self.accuracy(x_train, y_train),
            samples=net.epochs * len(x_train),
            pulses=sum(r.counts.pulses for r in self.rules),
            resets=sum(r.counts.resets for r in self.rules),
            depressions=sum(r.counts.depressions for r in self.rules),
            accuracy_per_epoch=per_epoch,
        )

    def positions(self) -> list[NDArray[np.int64]]:
        """Every tile's device positions (pulses since reset), for a transfer."""
        return [t.positions() for t in self.tiles]

    def program(self, positions: Sequence[NDArray[np.int64]]) -> None:
        """Program every tile open loop to ``positions`` (e.g. trained off-chip on ideal devices)."""
        for tile, p in zip(self.tiles, positions, strict=True):
            tile.program_positions(p)

"""Huang et al.'s self-adaptive weight on tiles, their four updating modes, and the MLP built of them.

The weight (SI: the ``Conv`` and ``FC`` classes, and "Step2"). Every weight has two
differential pairs, P and N, and each pair is two devices of different conductance scale:
``w1`` with range ``[Gmin1, Gmax1]`` and ``w2`` with ``[Gmin2, Gmax2]``,
``Gmax1 : Gmax2 = Gmin1 : Gmin2 = 2 : 1`` (``ratio``). The weight is
``W = (P_w1 - P_w2) - (N_w1 - N_w2)``. Each weight's sign at initialisation chooses its
*active* pair (``sign`` +1: P, -1: N); only the active pair is ever programmed, the other
stays at Gmin, so ``W = sign (w1 - w2)`` of the active pair and can still cross zero
(``w1 - w2`` spans ``[-Gmax2, Gmax1]``).

On tiles: the :class:`SelfAdaptiveTile` *is* the tile of the ``w1`` devices (side ``PLUS`` =
P_w1, ``MINUS`` = N_w1) with scale factor ``ratio K``, and holds the tile of the ``w2`` devices
(:attr:`SelfAdaptiveTile.w2`, scale ``K``, the same device table): the same device at the
same position conducts ``ratio`` times more in ``w1`` (the lognormal shifts too: Gmin in the
same ratio). A read is the two tiles' reads combined, ``I = V (W1 - W2)``, and the weight
unit is the span of one ``w2`` device (Huang normalises ``Gmax2 = 1``).

The four updating modes (SI, "Step4: Define the updating algorithm" and the ``SGD`` class:
``updating_mode1``, ``updating_mode2``, ``updating_mode3_W2_random``,
``updating_mode4_W2_eq_R``; "the name of mode1/mode2/mode3/mode4 is the same as that in the
main text"). Updates are sign-only: each weight whose gradient sign is nonzero gets one pulse
per programmed device. To raise the active pair's ``w1 - w2`` (``e = +1``) or lower it
(``e = -1``):

* ``mode1``: ``w1`` and ``w2`` move the same way (both LTP for ``e = +1``, both LTD for -1).
  The net step is ``ratio * step(w1) - step(w2)``: with both devices at the same state it is
  one ``w2`` step; it adapts to their states (a ``w1`` near saturation gives a smaller, even a
  reversed, step). The self-adaptive mode proper, and the SI's default.
* ``mode2``: push-pull: ``w1`` and ``w2`` move opposite ways (``w1`` LTP and ``w2`` LTD to raise).
* ``mode3`` (``W2_random``): only ``w1`` is programmed; ``w2`` keeps its random initial
  conductance, a fixed random offset per weight.
* ``mode4`` (``W2_eq_R``): only ``w1`` is programmed; ``w2`` is a fixed reference
  ``R = Gmax2 / 2`` (Gmin2 = 0). The SI's code writes ``R`` into the ``w2`` of *both* pairs,
  which cancels and leaves ``W = +-w1`` (a weight that never changes sign); here ``R`` is on the
  active pair only, ``W = sign (w1 - R)``, as the mode's name says and as in modes 1-3.

Initialisation (SI, the layers' ``__init__``): ``sign`` from a normal draw; ``w1`` drawn
``N(Gmax1 / 2, sd)`` clipped to its range, ``w2`` ``N(Gmax2 / 2, sd)`` clipped (mode4: ``R``),
``sd = sqrt(2 / fan_in)``; each device written open loop: reset, then the pulses that bring it
nearest to its target by the nominal curve. Other differences from the SI's code: a weight
whose gradient is exactly 0 gets no pulse (the SI's masks write Gmin into its devices).
Pulses follow the emulator's physics (:mod:`.huang_device`), potentiation conductance-wise
like depression, as the SI's recursion does.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.emulator.depression import potentiate_conductance_wise
from crossbar_hil.emulator.network.mlp import NetworkConfig, TileNetwork
from crossbar_hil.emulator.network.tile_rules import RuleConfig, TileRule
from crossbar_hil.emulator.network.tiles import MINUS, PLUS, Tile, TileConfig

Mode = Literal["mode1", "mode2", "mode3", "mode4"]
MODES: tuple[Mode, ...] = ("mode1", "mode2", "mode3", "mode4")

W2_DIRECTION: dict[str, int] = {"mode1": 1, "mode2": -1, "mode3": 0, "mode4": 0}
"""Pulse direction of ``w2`` per unit direction of ``w1`` in each mode (0: ``w2`` never programmed)."""

RATIO = 2.0
"""Huang's ``Gmax1 : Gmax2`` (and ``Gmin1 : Gmin2``)."""


class SelfAdaptiveTile(Tile):
    """The ``w1`` devices of ``rows x cols`` self-adaptive weights, holding the ``w2`` devices' tile.

    ``config`` is that of the ``w2`` devices (scale ``K``); the ``w1`` devices get ``ratio K``.
    Both need depression (every mode but 3 and 4 depresses ``w2``, every mode depresses ``w1``),
    so it is switched on; a device without a depression curve is refused by :class:`TileConfig`.
    The inherited ``potentiate``/``depress``/``positions`` act on the ``w1`` devices.
    """

    def __init__(
        self, config: TileConfig, table: NDArray[np.float64] | None = None, ratio: float = RATIO
    ) -> None:
        if not ratio > 0:
            raise ValueError(f"ratio={ratio}: Gmax1 / Gmax2 must be > 0 (Huang: 2)")
        fields = {**config.model_dump(), "depression": True}
        w2_cfg = TileConfig.model_validate(fields)
        w1_seed = int(np.random.SeedSequence([config.seed, 1]).generate_state(1)[0])
        super().__init__(
            TileConfig.model_validate({**fields, "scale_k": ratio * config.scale_k, "seed": w1_seed}), table
        )
        self.ratio = ratio
        self.w2 = Tile(w2_cfg, table)
        """The ``w2`` devices (side PLUS: P_w2, MINUS: N_w2)."""
        self.sign = np.ones(self.shape, dtype=np.int8)
        """The active pair of every weight: +1 P, -1 N."""

    @property
    def g_span_siemens(self) -> float:
        """The weight unit (S): the span of one ``w2`` device, ``Gmax2 - Gmin2``."""
        return self.w2.g_span_siemens

    def weights_siemens(self) -> NDArray[np.float64]:
        """``(P_w1 - P_w2) - (N_w1 - N_w2)`` (S), shape (rows, cols); reads use it."""
        if self._w is None:
            g1, g2 = self.conductances(), self.w2.conductances()
            self._w = (g1[PLUS] - g2[PLUS]) - (g1[MINUS] - g2[MINUS])
        return self._w

    def active(self, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """``mask`` (rows, cols) placed on each weight's active side: (2, rows, cols)."""
        return np.stack((mask & (self.sign > 0), mask & (self.sign < 0)))

    def move(self, w1_dir: NDArray[np.integer], w2_dir: NDArray[np.integer]) -> None:
        """One pulse on the active ``w1`` / ``w2`` device of every weight where the direction
        (rows, cols) is nonzero: +1 potentiating (LTP), -1 depressing (LTD), both conductance-wise
        as in the SI (:func:`~crossbar_hil.emulator.depression.potentiate_conductance_wise`)."""
        for tile, d in ((self, w1_dir), (self.w2, w2_dir)):
            if (d > 0).any():
                potentiate_conductance_wise(tile.state, self.active(d > 0))
                tile._changed()
            if (d < 0).any():
                tile.depress(self.active(d < 0))
        self._changed()

    def program(
        self, sign: NDArray[np.integer], w1_fraction: NDArray[np.float64], w2_fraction: NDArray[np.float64]
    ) -> None:
        """Choose the active pairs (``sign``) and write their devices open loop to the given
        fractions (0..1) of their ranges, by the nominal curve; the other pairs are reset."""
        self.sign = np.where(np.asarray(sign) >= 0, 1, -1).astype(np.int8)
        for tile, fraction in ((self, w1_fraction), (self.w2, w2_fraction)):
            table = tile.state.table
            env = np.maximum.accumulate((table - table[0]) / (table[-1] - table[0]))
            f = np.clip(np.asarray(fraction, dtype=float), 0.0, 1.0)
            m = np.clip(np.searchsorted(env, f), 1, env.size - 1)
            pos = np.where(f - env[m - 1] <= env[m] - f, m - 1, m)
            tile.program_positions(np.where(self.active(np.ones(self.shape, dtype=bool)), pos[None], 0))
        self._changed()


def initialise(tile: SelfAdaptiveTile, mode: Mode, fan_in: int, rng: np.random.Generator) -> None:
    """Huang's initial weights on ``tile`` (see the module docstring), drawn from ``rng``."""
    shape = tile.shape
    sd = float(np.sqrt(2.0 / fan_in))
    sign = np.where(rng.normal(size=shape) >= 0, 1, -1)
    w1 = np.clip(rng.normal(tile.ratio / 2, sd, size=shape), 0.0, tile.ratio) / tile.ratio
    w2 = rng.normal(0.5, sd, size=shape)
    tile.program(sign, w1, np.full(shape, 0.5) if mode == "mode4" else np.clip(w2, 0.0, 1.0))


class ModeRule(TileRule):
    """One of Huang's updating modes on a :class:`SelfAdaptiveTile` (see the module docstring).

    Counts: ``pulses`` every programming pulse (LTP and LTD), ``depressions`` the LTD ones.
    """

    name = "huang"

    def __init__(self, tile: SelfAdaptiveTile, mode: Mode) -> None:
        super().__init__(tile, RuleConfig(rule="manhattan"))  # one step per update, no saturation handling
        self.sa_tile, self.mode = tile, mode

    def update(self, signs: NDArray[np.int8]) -> None:
        e = signs.astype(np.int8) * self.sa_tile.sign  # direction of the active pair's w1 - w2
        w2 = W2_DIRECTION[self.mode] * e
        self.sa_tile.move(e, w2)
        self.counts.pulses += int(np.count_nonzero(e) + np.count_nonzero(w2))
        self.counts.depressions += int(np.count_nonzero(e < 0) + np.count_nonzero(w2 < 0))


class SelfAdaptiveMLP(TileNetwork):
    """:class:`TileNetwork` (hard-sigmoid MLP, softmax + cross-entropy, sign-only updates) on
    self-adaptive weights updated by one of Huang's modes; ``net.init_fraction`` is unused
    (Huang's initialisation instead). ``devices`` as for :class:`TileNetwork`."""

    def __init__(
        self,
        net: NetworkConfig,
        mode: Mode,
        devices: dict | None = None,
        table: NDArray[np.float64] | None = None,
        ratio: float = RATIO,
    ) -> None:
        self.mode, self.ratio = mode, ratio
        super().__init__(net, devices, None, table)

    def new_tile(self, cfg: TileConfig, table: NDArray[np.float64] | None) -> Tile:
        return SelfAdaptiveTile(cfg, table, self.ratio)

    def initialise(self) -> None:
        for tile in self.tiles:
            assert isinstance(tile, SelfAdaptiveTile)
            initialise(tile, self.mode, tile.shape[0] - 1, self.rng)

    def new_rule(self, tile: Tile) -> TileRule:
        assert isinstance(tile, SelfAdaptiveTile)
        return ModeRule(tile, self.mode)

"""The bench's update rules on tiles: Manhattan and Lim's methods a, b, c, vectorised.

A tile rule moves every logic weight with a nonzero sign one conductance step that
way, by one potentiating pulse on ``G+`` (sign +1) or ``G-`` (sign -1), and handles a
saturated device exactly as the 4x4 rules of :mod:`crossbar_hil.training.rules.lim` do:

* saturation is judged from read-back conductances only, as
  :class:`~crossbar_hil.training.rules.device_watch.DeviceWatch` judges it
  (``saturation_pulses`` pulses in a row that raised the read by no more than
  ``saturation_tol_siemens``), here by :class:`TileWatch` on whole arrays;
* method a resets both devices of the pair and re-programmes from the bottom with
  read-verify pulses; method b resets the *other* device (both when both are
  saturated) and pulses it up until the weight is one step past its old value;
  method c depresses the other device one step; a saturated device whose partner is
  known to be at the bottom means the weight is at its extreme: nothing is sent.

The re-programming loops run in lockstep over every saturated pair of an update (one
read per loop turn for all of them) instead of pair after pair; the pairs share no
device, so each pair gets the same pulses and resets as the 4x4 rule gives it. One
documented difference: a device with no measured first step after a reset uses the
median over the tile's devices measured when its loop starts, which in the 4x4 rule
can also include pairs re-programmed earlier in the same update (equal for identical
devices; ``tests/emulator/network/test_tile_rules.py`` checks the sequences match).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from crossbar_hil.emulator import physics
from crossbar_hil.emulator.network.tiles import MINUS, PLUS, Tile
from crossbar_hil.emulator.physics import put_flat
from crossbar_hil.training.config import TrainingConfig

RuleName = Literal["manhattan", "method_a", "method_b", "method_c"]

_BENCH = TrainingConfig.model_fields


class RuleConfig(BaseModel):
    """The settings of a tile rule; defaults and meanings are the bench's (:class:`TrainingConfig`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    rule: RuleName = Field("method_b", description="Update rule, as the bench's rule of that name.")
    saturation_tol_siemens: float = Field(
        _BENCH["saturation_tol_siemens"].default,
        ge=0,
        description=_BENCH["saturation_tol_siemens"].description,
    )
    saturation_pulses: int = Field(
        _BENCH["saturation_pulses"].default,
        ge=1,
        le=100,
        description="Methods a, b, c: flat pulses in "
        "a row that make a device saturated (see TrainingConfig.saturation_pulses).",
    )
    max_verify_pulses: int = Field(
        _BENCH["max_verify_pulses"].default,
        ge=1,
        le=100_000,
        description=_BENCH["max_verify_pulses"].description,
    )


class TileWatch:
    """What a rule knows of each device of a tile, from reads only (the arrays of ``DeviceWatch``).

    Arrays have the tile's device shape (2, rows, cols). The watch judges only the devices
    pulsed since the previous read (:meth:`pulsed_at`, :meth:`judge`): every other device's
    read is unchanged since, so judging it would change nothing.
    """

    def __init__(self, shape: tuple[int, ...], tol_siemens: float, pulses: int) -> None:
        self.tol_siemens, self.pulses = tol_siemens, pulses
        self.saturated = np.zeros(shape, dtype=bool)
        self.at_bottom = np.zeros(shape, dtype=bool)
        """Reset, and not moved up since."""
        self.bottom_step_siemens = np.full(shape, np.nan)
        """Rise (S) the first pulse after the device's last known reset gave."""
        self.after_reset = np.zeros(shape, dtype=bool)
        self.flat = np.zeros(shape, dtype=np.int64)
        self._pulsed: NDArray[np.intp] | None = None
        self._before_siemens: NDArray[np.float64] | None = None

    def pulsed_at(self, flat: NDArray[np.intp], before_siemens: NDArray[np.float64]) -> None:
        """The devices ``flat`` (distinct flat indices) were pulsed once, from the reads
        ``before_siemens`` (S): they are judged at the next :meth:`judge`."""
        self._pulsed, self._before_siemens = flat, before_siemens

    def judge(self, g_siemens: NDArray[np.float64]) -> None:
        """Take a fresh read (S), shape (2, rows, cols): judge the devices pulsed since the previous."""
        idx, before = self._pulsed, self._before_siemens
        self._pulsed = self._before_siemens = None
        if idx is None or before is None or idx.size == 0:
            return
        rise = g_siemens.take(idx) - before
        moved = rise > self.tol_siemens
        flat = np.where(moved, 0, self.flat.take(idx) + 1)
        put_flat(self.flat, idx, flat)
        put_flat(self.saturated, idx, flat >= self.pulses)
        self.forget_bottom(idx, moved, rise)

    def forget_bottom(
        self, idx: NDArray[np.intp], moved: NDArray[np.bool_], rise: NDArray[np.float64]
    ) -> None:
        """The devices ``idx`` that ``moved`` (by ``rise``, S) are off the bottom; a first move
        after a reset is that device's bottom step."""
        if not moved.any():
            return
        first = moved & self.after_reset.take(idx)
        if first.any():
            put_flat(self.bottom_step_siemens, idx[first], rise[first])
            put_flat(self.after_reset, idx[moved], False)
        put_flat(self.at_bottom, idx[moved], False)

    def bottom_step_median(self) -> float:
        """Median first-step-after-reset over the devices measured (S), 0 when none is."""
        known = self.bottom_step_siemens[np.isfinite(self.bottom_step_siemens)]
        return median(known) if known.size else 0.0


def median(x: NDArray[np.float64]) -> float:
    """``numpy.median`` of a 1-D array without NaN, the same bits, without its overhead (a partition)."""
    k = x.size // 2
    if x.size % 2:
        return float(np.partition(x, k)[k])
    part = np.partition(x, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2.0)


@dataclass
class Counts:
    """What a rule sent to a tile so far."""

    pulses: int = 0
    """Every programming pulse: update steps and read-verify pulses (potentiating), and the
    depressing pulses of method c and of Huang's modes (also counted in :attr:`depressions`)."""
    verify_pulses: int = 0
    resets: int = 0
    depressions: int = 0
    """Depressing pulses (method c, Huang's LTD); part of :attr:`pulses`."""
    reset_log: list[tuple[int, int, int]] = field(default_factory=list)
    """(row, col, side) of every reset, in the order the 4x4 rule would send them (when logging)."""


class TileRule(ABC):
    """One update of a tile: every weight with ``signs[r, c] != 0`` moves one step that way."""

    name: ClassVar[str]

    def __init__(self, tile: Tile, config: RuleConfig, log_resets: bool = False) -> None:
        self.tile, self.config = tile, config
        self.counts = Counts()
        self.log_resets = log_resets

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.update is TileRule.update and cls.update_weights is TileRule.update_weights:
            raise TypeError(f"{cls.__name__}: a tile rule defines update or update_weights (or both)")

    def update(self, signs: NDArray[np.int8]) -> None:
        """Send one update; ``signs`` (rows, cols) in {-1, 0, 1}."""
        rows = np.flatnonzero(signs.any(axis=1))
        cols = np.flatnonzero(signs.any(axis=0))
        self.update_block(rows, cols, signs[np.ix_(rows, cols)])

    def update_block(self, rows: NDArray[np.intp], cols: NDArray[np.intp], signs: NDArray[np.int8]) -> None:
        """:meth:`update` with the signs given on the block ``rows`` x ``cols`` (both ascending)
        only, ``signs`` (len(rows), len(cols)); every weight outside has sign 0. An online update
        is such a block (the rows with input, the columns with error): its cost is the block's."""
        weights = (rows[:, None] * self.tile.shape[1] + cols).ravel()
        s = np.ravel(signs)
        moving = s != 0
        if not moving.all():
            weights, s = weights[moving], s[moving]
        self.update_weights(weights, s > 0)

    def update_outer(self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.bool_]) -> None:
        """:meth:`update` of an outer product: every weight of ``rows`` x ``cols`` (both ascending)
        moves, up in the columns where ``up`` (len(cols)) and down in the others; the online
        update (the rows with input, the columns with error)."""
        self.update_weights(np.add.outer(rows * self.tile.shape[1], cols).ravel(), np.tile(up, rows.size))

    def update_weights(self, weights: NDArray[np.intp], up: NDArray[np.bool_]) -> None:
        """Move the weights of flat (row-major) indices ``weights`` (ascending) one step, up where
        ``up`` and down elsewhere. The rules here send only those weights' pulses; this default,
        for a rule that defines only :meth:`update` on the full sign matrix, builds that matrix."""
        signs = np.zeros(self.tile.shape, dtype=np.int8)
        signs.flat[weights] = np.where(up, 1, -1)
        self.update(signs)

    def up_devices_outer(
        self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.bool_]
    ) -> NDArray[np.intp]:
        """Flat indices of the device each weight of :meth:`update_outer` pulses up (row-major):
        ``G+`` in the columns going up, ``G-`` in the others."""
        return np.add.outer(rows * self.tile.shape[1], np.where(up, cols, cols + self.tile.n_weights)).ravel()


class ManhattanTile(TileRule):
    """One potentiating pulse per nonzero sign; a saturated device is pulsed all the same."""

    name = "manhattan"

    def update_outer(self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.bool_]) -> None:
        self._pulse(self.up_devices_outer(rows, cols, up))

    def update_weights(self, weights: NDArray[np.intp], up: NDArray[np.bool_]) -> None:
        self._pulse(np.where(up, weights, weights + self.tile.n_weights))

    def _pulse(self, devices: NDArray[np.intp]) -> None:
        if devices.size:
            self.tile.potentiate_at(devices)
            self.counts.pulses += devices.size


class LimTile(TileRule):
    """The shared part of methods a, b, c: plain steps, and a hook for saturated devices."""

    WINDOW_MAX_ENTRIES: ClassVar[int] = 4_000_000
    """Largest table window (positions x pulses) kept for the read-verify loops; above, computed per loop."""

    def __init__(self, tile: Tile, config: RuleConfig, log_resets: bool = False) -> None:
        super().__init__(tile, config, log_resets)
        st = tile.state
        self.watch = TileWatch(st.position.shape, config.saturation_tol_siemens, config.saturation_pulses)
        self._j_max = st.n_max + config.saturation_pulses
        self._jj = np.arange(1, self._j_max + 1)
        self._window: NDArray[np.float64] | None = None
        if (st.n_max + 1) * self._j_max <= self.WINDOW_MAX_ENTRIES:
            self._window = self._table_rise(np.arange(st.n_max + 1), self._j_max)

    def _table_rise(self, pos0: NDArray[np.int64], j: int) -> NDArray[np.float64]:
        """``G_exp[min(p + 1..j, n_max)] - G_exp[0]`` (S) for each start position p of ``pos0``, (len, j)."""
        st = self.tile.state
        if self._window is not None:
            return self._window[pos0, :j]
        return st.table[np.minimum(pos0[:, None] + self._jj[:j], st.n_max)] - st.table[0]

    def update_outer(self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.bool_]) -> None:
        self._step(self.up_devices_outer(rows, cols, up))

    def update_weights(self, weights: NDArray[np.intp], up: NDArray[np.bool_]) -> None:
        self._step(np.where(up, weights, weights + self.tile.n_weights))

    def _step(self, up_dev: NDArray[np.intp]) -> None:
        """One update: the devices ``up_dev`` (flat indices, one per moving weight, ascending by
        weight) are the sides that move their weights the wanted way."""
        tile, watch = self.tile, self.watch
        g = tile.conductances()
        watch.judge(g)  # Online: judge the previous update's pulses first.
        sat_up = watch.saturated.take(up_dev)
        if sat_up.any():
            n_weights = tile.n_weights
            weights, up = up_dev % n_weights, up_dev < n_weights
            special = sat_up & ~watch.at_bottom.take(np.where(up, weights + n_weights, weights))
            if special.any():
                rows, cols = np.divmod(weights[special], tile.shape[1])
                order = np.lexsort((rows, cols))  # 4x4 order: neuron (column) by neuron
                self.when_saturated(rows[order], cols[order], np.where(up[special][order], PLUS, MINUS))
            up_dev = up_dev[~sat_up]
        before = g.take(up_dev)
        tile.potentiate_at(up_dev)
        self.counts.pulses += up_dev.size
        watch.pulsed_at(up_dev, before)

    @abstractmethod
    def when_saturated(self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.intp]) -> None:
        """Handle the saturated ``up`` sides of pairs (rows, cols), whose other side is not at the bottom."""

    # ------------------------------------------------------------ re-programming
    def reprogram(
        self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.intp], reset: NDArray[np.bool_]
    ) -> None:
        """Reset ``reset`` (k, 2: up side, down side) of pairs (rows, cols), then read-verify every
        pair, in lockstep, to one step past its old weight (see :mod:`crossbar_hil.training.rules.lim`)."""
        tile, watch, cfg = self.tile, self.watch, self.config
        st = tile.state
        sides = np.stack((up, 1 - up), axis=1)
        dev = tile.device_index(sides, rows[:, None], cols[:, None])  # (k, 2): up, down device
        g = tile.conductances().take(dev)
        u_old = g[:, 0] - g[:, 1]
        if self.log_resets:
            for k, pair in enumerate(reset):
                for j in np.flatnonzero(pair):
                    self.counts.reset_log.append((int(rows[k]), int(cols[k]), int(sides[k, j])))
        sent = dev[reset]
        physics.reset_at(st, sent)
        self.counts.resets += sent.size
        put_flat(watch.saturated, sent, False)
        put_flat(watch.flat, sent, 0)
        put_flat(watch.at_bottom, sent, True)
        put_flat(watch.after_reset, sent, True)
        g = physics.conductances_at(st, dev)
        budget = np.full(rows.shape, cfg.max_verify_pulses)
        # Below the old weight (both reset): raise it with the device that adds.
        active = np.flatnonzero(g[:, 0] - g[:, 1] <= u_old)
        if active.size:
            self._verify_loop(dev, g, active, budget, 0, u_old)
        # Above it by more than a step: lower it with the other device.
        own = watch.bottom_step_siemens.take(dev[:, 1])
        if not np.all(np.isfinite(own)):
            own = np.where(np.isfinite(own), own, watch.bottom_step_median())
        active = np.flatnonzero((g[:, 0] - g[:, 1] - own > u_old) & (budget > 0))
        if active.size:
            self._verify_loop(dev, g, active, budget, 1, u_old)
        tile._changed_at(dev)

    def _verify_loop(
        self,
        dev: NDArray[np.intp],
        g: NDArray[np.float64],
        active: NDArray[np.intp],
        budget: NDArray[np.int64],
        side: int,
        u_old: NDArray[np.float64],
    ) -> None:
        """The read-verify loop of the 4x4 rule on ``side`` of the pairs ``active``, for all at once.

        The 4x4 rule pulses, reads, and goes on while the loop's condition holds, the device
        is not judged saturated and the budget lasts. A tile's devices are noise-free, so the
        reads the next ``J`` pulses would give are the device's own conductances at the next
        ``J`` positions: they are laid out as a (pairs, J) array, the saturation watch and the
        condition evaluated on it, and each pair stops at its first pulse that ends the loop.
        Side 0 (raise): go on while ``u <= u_old``; side 1 (lower): while ``u - rise > u_old``,
        ``rise`` being the last pulse's. ``dev`` (k, 2) are the pairs' flat device indices, ``g``
        their reads (S); updates the state, the watch, ``g`` and ``budget`` in place.
        """
        cfg, st, watch = self.config, self.tile.state, self.watch
        d = dev[active, side]
        bud = budget[active]
        j_max = int(min(bud.max(), self._j_max))
        jj = self._jj[:j_max]
        pos0 = st.position.take(d)
        stuck = st.stuck.take(d)
        rise_dev = self._table_rise(pos0, j_max)
        if stuck.any():
            rise_dev[stuck] = (st.g_dev.take(d[stuck]) - st.table[0])[:, None]
        if st.range_scale is not None:
            rise_dev = st.range_scale.take(d)[:, None] * rise_dev
        g_side = st.scale_k * (rise_dev + st.shifts_siemens.take(d)[:, None])  # (m, J) S
        rise = np.empty_like(g_side)
        np.subtract(g_side[:, 0], g[active, side], out=rise[:, 0])
        np.subtract(g_side[:, 1:], g_side[:, :-1], out=rise[:, 1:])
        moved = rise > cfg.saturation_tol_siemens
        flat0 = watch.flat.take(d)
        other = g[active, 1 - side][:, None]
        if side == 0:
            go_on = g_side - other <= u_old[active, None]
        else:
            go_on = (other - g_side) - rise > u_old[active, None]
        go_on &= self._unsaturated(moved, flat0)
        if bud.min() <= j_max:
            go_on &= jj < bud[:, None]
        pairs = np.arange(active.size)
        n = np.argmin(go_on, axis=1) + 1  # pulses sent per pair: up to the first that ends the loop
        n[go_on[pairs, n - 1]] = j_max  # none ends it (argmin found no False): all J
        at = n - 1
        moving = d[~stuck]
        position = np.minimum(pos0[~stuck] + n[~stuck], st.n_max)
        put_flat(st.position, moving, position)
        put_flat(st.g_dev, moving, st.table.take(position))
        # Flat pulses after the n-th: the run of flat pulses that ends at pulse n, on top of the
        # flat0 before the loop when it covers pulses 1..n. The loop went on, not saturated,
        # through pulse n - 1, so the run is at most saturation_pulses long: look that far back.
        run = np.zeros(active.size, dtype=np.int64)
        going = np.ones(active.size, dtype=bool)
        for t in range(min(cfg.saturation_pulses, j_max)):
            col = n - 1 - t
            going &= col >= 0
            going &= ~moved[pairs, np.maximum(col, 0)]
            run += going
        flat = np.where(run == n, flat0 + n, run)
        put_flat(watch.flat, d, flat)
        put_flat(watch.saturated, d, flat >= cfg.saturation_pulses)
        first = np.argmax(moved, axis=1)
        watch.forget_bottom(d, moved[pairs, first] & (first < n), rise[pairs, first])
        sent = int(n.sum())
        self.counts.pulses += sent
        self.counts.verify_pulses += sent
        g[active, side] = g_side[pairs, at]
        budget[active] = bud - n

    def _unsaturated(self, moved: NDArray[np.bool_], flat0: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Not judged saturated after pulse j (m, J): one of the last ``saturation_pulses``
        pulses up to j moved the device, counting the ``flat0`` flat pulses it had before
        pulse 1 (pulse 1 - i before the loop was flat when ``flat0 > i``)."""
        k = self.config.saturation_pulses
        out = moved.copy()
        for t in range(1, min(k, moved.shape[1])):
            out[:, t:] |= moved[:, :-t]
        head = min(k - 1, moved.shape[1])  # pulses whose window reaches before the loop
        if head:
            out[:, :head] |= flat0[:, None] < np.arange(k - 1, k - 1 - head, -1)
        return out


class MethodATile(LimTile):
    """Method a: a saturated device makes the pair reset both and re-programme from the bottom."""

    name = "method_a"

    def when_saturated(self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.intp]) -> None:
        self.reprogram(rows, cols, up, np.ones((rows.size, 2), dtype=bool))


class MethodBTile(LimTile):
    """Method b: reset only the other device (both when both saturated) and pulse it up."""

    name = "method_b"

    def when_saturated(self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.intp]) -> None:
        both = self.watch.saturated[1 - up, rows, cols]
        self.reprogram(rows, cols, up, np.stack((both, np.ones_like(both)), axis=1))


class MethodCTile(LimTile):
    """Method c: a saturated device makes the other device of the pair depress one step."""

    name = "method_c"

    def __init__(self, tile: Tile, config: RuleConfig, log_resets: bool = False) -> None:
        if tile.depression_table is None:
            raise ValueError(
                "rule method_c depresses devices, but the tile's devices cannot be depressed "
                "(TileConfig.depression is off, or the device has no depression curve)"
            )
        super().__init__(tile, config, log_resets)

    def when_saturated(self, rows: NDArray[np.intp], cols: NDArray[np.intp], up: NDArray[np.intp]) -> None:
        where = np.zeros(self.tile.state.position.shape, dtype=bool)
        where[1 - up, rows, cols] = True
        self.tile.depress(where)
        self.counts.pulses += rows.size
        self.counts.depressions += rows.size
        w = self.watch
        w.saturated[where] = False
        w.flat[where] = 0


TILE_RULES: dict[str, type[TileRule]] = {
    r.name: r for r in (ManhattanTile, MethodATile, MethodBTile, MethodCTile)
}


def make_rule(tile: Tile, config: RuleConfig, log_resets: bool = False) -> TileRule:
    """The tile rule ``config.rule`` acting on ``tile``."""
    return TILE_RULES[config.rule](tile, config, log_resets)

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
from crossbar_hil.emulator import physics
from crossbar_hil.emulator.network.tiles import MINUS, PLUS, Tile
from crossbar_hil.training.config import TrainingConfig
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

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

    Arrays have the tile's device shape (2, rows, cols).
    """

    def __init__(self, g_siemens: NDArray[np.float64], tol_siemens: float, pulses: int) -> None:
        self.tol_siemens, self.pulses = tol_siemens, pulses
        shape = g_siemens.shape
        self.g_siemens = g_siemens.copy()
        """The last read (S)."""
        self.saturated = np.zeros(shape, dtype=bool)
        self.at_bottom = np.zeros(shape, dtype=bool)
        """Reset, and not moved up since."""
        self.bottom_step_siemens = np.full(shape, np.nan)
        """Rise (S) the first pulse after the device's last known reset gave."""
        self.after_reset = np.zeros(shape, dtype=bool)
        self.flat = np.zeros(shape, dtype=np.int64)
        self.pulsed = np.zeros(shape, dtype=bool)
        """Potentiated since the last read: judged at the next."""

    def judge(self, g_siemens: NDArray[np.float64]) -> None:
        """Take a fresh read (S): judge the devices potentiated since the previous one."""
        pulsed = self.pulsed
        if pulsed.any():
            rise = g_siemens - self.g_siemens
            moved = pulsed & (rise > self.tol_siemens)
            self.flat = np.where(moved, 0, self.flat + (pulsed & ~moved))
            self.saturated = np.where(pulsed, self.flat >= self.pulses, self.saturated)
            first = moved & self.after_reset
            if first.any():
                self.bottom_step_siemens[first] = rise[first]
                self.after_reset &= ~moved
            self.at_bottom &= ~moved
            self.pulsed = np.zeros_like(pulsed)
        self.g_siemens = g_siemens

    def bottom_step_median(self) -> float:
        """Median first-step-after-reset over the devices measured (S), 0 when none is."""
        known = self.bottom_step_siemens[np.isfinite(self.bottom_step_siemens)]
        return float(np.median(known)) if known.size else 0.0


@dataclass
class Counts:
    """What a rule sent to a tile so far."""

    pulses: int = 0
    """Potentiating pulses, update steps and read-verify pulses."""
    verify_pulses: int = 0
    resets: int = 0
    depressions: int = 0
    reset_log: list[tuple[int, int, int]] = field(default_factory=list)
    """(row, col, side) of every reset, in the order the 4x4 rule would send them (when logging)."""


class TileRule(ABC):
    """One update of a tile: every weight with ``signs[r, c] != 0`` moves one step that way."""

    name: ClassVar[str]

    def __init__(self, tile: Tile, config: RuleConfig, log_resets: bool = False) -> None:
        self.tile, self.config = tile, config
        self.counts = Counts()
        self.log_resets = log_resets

    @abstractmethod
    def update(self, signs: NDArray[np.int8]) -> None:
        """Send one update; ``signs`` (rows, cols) in {-1, 0, 1}."""


class ManhattanTile(TileRule):
    """One potentiating pulse per nonzero sign; a saturated device is pulsed all the same."""

    name = "manhattan"

    def update(self, signs: NDArray[np.int8]) -> None:
        mask = np.stack((signs > 0, signs < 0))
        self.tile.potentiate(mask)
        self.counts.pulses += int(np.count_nonzero(signs))


class LimTile(TileRule):
    """The shared part of methods a, b, c: plain steps, and a hook for saturated devices."""

    def __init__(self, tile: Tile, config: RuleConfig, log_resets: bool = False) -> None:
        super().__init__(tile, config, log_resets)
        self.watch = TileWatch(tile.conductances(), config.saturation_tol_siemens, config.saturation_pulses)

    def update(self, signs: NDArray[np.int8]) -> None:
        watch = self.watch
        watch.judge(self.tile.conductances())  # Online: judge the previous update's pulses first.
        up_plus = signs > 0
        want = signs != 0
        sat_up = want & np.where(up_plus, watch.saturated[PLUS], watch.saturated[MINUS])
        special = np.zeros_like(want)
        if sat_up.any():
            down_at_bottom = np.where(up_plus, watch.at_bottom[MINUS], watch.at_bottom[PLUS])
            special = sat_up & ~down_at_bottom
            if special.any():
                rows, cols = np.nonzero(special.T)[::-1]  # 4x4 order: neuron (column) by neuron
                self.when_saturated(rows, cols, np.where(up_plus[rows, cols], PLUS, MINUS))
        plain = want & ~sat_up
        mask = np.stack((plain & up_plus, plain & ~up_plus))
        self.tile.potentiate(mask)
        self.counts.pulses += int(np.count_nonzero(plain))
        watch.pulsed |= mask

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
        idx = (np.stack((up, 1 - up), axis=1), rows[:, None], cols[:, None])  # (k, 2) device indices
        st = tile.state
        sub = physics.DeviceState(
            table=st.table,
            scale_k=st.scale_k,
            shifts_siemens=st.shifts_siemens[idx][None],
            stuck=st.stuck[idx][None],
            position=st.position[idx][None],
            g_dev=st.g_dev[idx][None],
            range_scale=None if st.range_scale is None else st.range_scale[idx][None],
        )
        names = ("saturated", "at_bottom", "bottom_step_siemens", "after_reset", "flat")
        w = {n: getattr(watch, n)[idx][None] for n in names}
        g = physics.conductances(sub)
        u_old = g[..., 0] - g[..., 1]
        reset = reset[None]
        if self.log_resets:
            for k, sides in enumerate(reset[0]):
                for j in np.flatnonzero(sides):
                    self.counts.reset_log.append((int(rows[k]), int(cols[k]), int(idx[0][k, j])))
        physics.reset(sub, reset)
        self.counts.resets += int(np.count_nonzero(reset))
        w["saturated"][reset] = False
        w["flat"][reset] = 0
        w["at_bottom"][reset] = True
        w["after_reset"][reset] = True
        g = physics.conductances(sub)
        budget = np.full(u_old.shape, cfg.max_verify_pulses)
        # Below the old weight (both reset): raise it with the device that adds.
        active = (g[..., 0] - g[..., 1] <= u_old) & (budget > 0)
        if active.any():
            g, budget = self._verify_loop(sub, w, g, active, budget, side=0, u_old=u_old)
        # Above it by more than a step: lower it with the other device.
        own = w["bottom_step_siemens"][..., 1]
        if not np.all(np.isfinite(own)):
            merged = watch.bottom_step_siemens.copy()
            merged[idx] = w["bottom_step_siemens"][0]
            known = merged[np.isfinite(merged)]
            own = np.where(np.isfinite(own), own, float(np.median(known)) if known.size else 0.0)
        active = (g[..., 0] - g[..., 1] - own > u_old) & (budget > 0)
        if active.any():
            g, budget = self._verify_loop(sub, w, g, active, budget, side=1, u_old=u_old)
        st.position[idx] = sub.position[0]
        st.g_dev[idx] = sub.g_dev[0]
        for n in names:
            getattr(watch, n)[idx] = w[n][0]
        watch.g_siemens = watch.g_siemens.copy()
        watch.g_siemens[idx] = g[0]
        tile._changed()

    def _verify_loop(
        self,
        sub: physics.DeviceState,
        w: dict[str, NDArray[Any]],
        g: NDArray[np.float64],
        active: NDArray[np.bool_],
        budget: NDArray[np.int64],
        side: int,
        u_old: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """The read-verify loop of the 4x4 rule on ``side`` of every active pair, for all at once.

        The 4x4 rule pulses, reads, and goes on while the loop's condition holds, the device
        is not judged saturated and the budget lasts. A tile's devices are noise-free, so the
        reads the next ``J`` pulses would give are the device's own conductances at the next
        ``J`` positions: they are laid out as a (pairs, J) array, the saturation watch and the
        condition evaluated on it, and each pair stops at its first pulse that ends the loop.
        Side 0 (raise): go on while ``u <= u_old``; side 1 (lower): while ``u - rise > u_old``,
        ``rise`` being the last pulse's. Returns the new conductances (S) and budgets.
        """
        cfg = self.config
        n_max = sub.n_max
        j_max = int(min(budget[active].max(), n_max + cfg.saturation_pulses))
        jj = np.arange(1, j_max + 1)
        pos0 = sub.position[..., side]
        stuck = sub.stuck[..., side]
        pos = np.where(stuck[..., None], pos0[..., None], np.minimum(pos0[..., None] + jj, n_max))
        g_dev = np.where(stuck[..., None], sub.g_dev[..., side][..., None], sub.table[pos])
        rise_dev = g_dev - sub.table[0]
        if sub.range_scale is not None:
            rise_dev = sub.range_scale[..., side][..., None] * rise_dev
        g_side = sub.scale_k * (rise_dev + sub.shifts_siemens[..., side][..., None])  # (1, k, J) S
        g_prev = np.concatenate((g[..., side][..., None], g_side[..., :-1]), axis=-1)
        rise = g_side - g_prev
        moved = rise > cfg.saturation_tol_siemens
        last = np.maximum.accumulate(np.where(moved, jj, 0), axis=-1)
        flat = np.where(last > 0, jj - last, w["flat"][..., side][..., None] + jj)
        saturated = flat >= cfg.saturation_pulses
        other = g[..., 1 - side][..., None]
        u = g_side - other if side == 0 else other - g_side
        go_on = u <= u_old[..., None] if side == 0 else u - rise > u_old[..., None]
        go_on &= ~saturated & (jj < budget[..., None])
        n = np.where(active, np.argmin(go_on, axis=-1) + 1, 0)  # pulses sent per pair
        n = np.where(active & go_on.all(axis=-1), j_max, n)
        at = np.maximum(n - 1, 0)[..., None]
        took = active
        sub.position[..., side] = np.where(took, np.take_along_axis(pos, at, -1)[..., 0], pos0)
        sub.g_dev[..., side] = np.where(took, np.take_along_axis(g_dev, at, -1)[..., 0], sub.g_dev[..., side])
        w["flat"][..., side] = np.where(took, np.take_along_axis(flat, at, -1)[..., 0], w["flat"][..., side])
        sat_side = w["saturated"][..., side]
        w["saturated"][..., side] = np.where(took, np.take_along_axis(saturated, at, -1)[..., 0], sat_side)
        within = moved & (jj <= n[..., None])
        any_moved = within.any(axis=-1)
        first = np.argmax(within, axis=-1)[..., None]
        fresh = any_moved & w["after_reset"][..., side]
        step = w["bottom_step_siemens"][..., side]
        w["bottom_step_siemens"][..., side] = np.where(
            fresh, np.take_along_axis(rise, first, -1)[..., 0], step
        )
        w["at_bottom"][..., side] &= ~any_moved
        w["after_reset"][..., side] &= ~any_moved
        sent = int(n.sum())
        self.counts.pulses += sent
        self.counts.verify_pulses += sent
        new = g.copy()
        new[..., side] = np.where(took, np.take_along_axis(g_side, at, -1)[..., 0], g[..., side])
        return new, budget - n


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

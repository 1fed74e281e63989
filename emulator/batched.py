"""`CrossbarBatch`: many independent emulated crossbars at once, one per seed.

Crossbar ``b`` of a batch is the crossbar ``EmulatedCrossbar(config with seed=seeds[b])``:
the same shifts, stuck devices and noise streams (:func:`crossbar_hil.emulator.config.stream`),
the same physics (:mod:`crossbar_hil.emulator.physics`), the same pulse semantics. The
single-crossbar backend is a batch of one (:mod:`crossbar_hil.emulator.crossbar`).

Noise-free operations are whole-array numpy. With read or step noise each seed
keeps its own generator, drawn in the order the single crossbar would draw, so
that a batch reproduces the single runs bit for bit; this costs one generator
call per crossbar and operation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crossbar_hil.emulator import physics
from crossbar_hil.emulator.config import EmulatorConfig, Purpose, stream
from crossbar_hil.emulator.depression import depress
from crossbar_hil.emulator.devices import DeviceModel


class CrossbarBatch:
    """``len(seeds)`` crossbars that share ``config`` except for the seed.

    Shapes: conductances (B, rows, cols) S; currents (B, N, cols) A.
    ``members`` arguments select crossbars by a (B,) boolean mask (None = all);
    crossbars outside it draw no noise (as a finished single run draws none).
    """

    def __init__(
        self,
        config: EmulatorConfig,
        seeds: ArrayLike,
        device: DeviceModel | None = None,
        table: NDArray[np.float64] | None = None,
    ) -> None:
        self.config = cfg = config
        self.seeds = np.atleast_1d(np.asarray(seeds, dtype=np.int64))
        self.device = device if device is not None else cfg.device_model()
        table = np.asarray(self.device.table() if table is None else table, dtype=float)
        shape = (cfg.rows, cfg.cols)
        shifts = cfg.shifts.draw_batch([stream(s, Purpose.SHIFTS) for s in self.seeds], shape)
        if cfg.stuck_fraction > 0:
            draws = np.stack([stream(s, Purpose.STUCK).random(shape) for s in self.seeds])
            stuck = draws < cfg.stuck_fraction
        else:  # random() < 0 is never true: no draw needed for the same answer.
            stuck = np.zeros(shifts.shape, dtype=bool)
        self.state = physics.DeviceState.initial(
            table, cfg.scale_k, shifts, stuck, cfg.range_scales(self.seeds.tolist())
        )
        self.depression_table = self.device.depression_table() if cfg.depression else None
        """Conductance (S) after k depressing pulses from the top; None without depression."""
        # Noise streams exist only when there is noise: making 10,000 generators costs time.
        self._step_rngs = self._rngs(Purpose.STEP_NOISE) if cfg.step_noise else []
        self._read_rngs = self._rngs(Purpose.READ_NOISE) if cfg.read_noise else []

    def _rngs(self, purpose: Purpose) -> list[np.random.Generator]:
        return [stream(s, purpose) for s in self.seeds]

    def rng(self, purpose: Purpose, b: int) -> np.random.Generator:
        """The noise generator of crossbar b (a fresh, unused one when that noise is off)."""
        rngs = {Purpose.STEP_NOISE: self._step_rngs, Purpose.READ_NOISE: self._read_rngs}[purpose]
        if not rngs:
            rngs.extend(self._rngs(purpose))
        return rngs[b]

    @property
    def batch_size(self) -> int:
        """Number of crossbars B."""
        return int(self.seeds.size)

    @property
    def rows(self) -> int:
        """Rows of each crossbar."""
        return self.config.rows

    @property
    def cols(self) -> int:
        """Columns of each crossbar."""
        return self.config.cols

    # ------------------------------------------------------------ measurement
    def conductances(self) -> NDArray[np.float64]:
        """True (noise-free) conductances (S), (B, rows, cols)."""
        return physics.conductances(self.state)

    def read_conductances(self, members: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
        """Conductances (S) as read, with read noise, (B, rows, cols)."""
        return self._noisy(self.conductances(), members)

    def apply(
        self, row_v: NDArray[np.float64], members: NDArray[np.bool_] | None = None
    ) -> NDArray[np.float64]:
        """Column currents (A) for each pattern of ``row_v`` (N, rows) V: (B, N, cols).

        Equal to N single VMMs one after the other, read noise included.
        """
        return self._noisy(physics.column_currents(row_v, self.conductances()), members)

    def _noisy(self, x: NDArray[np.float64], members: NDArray[np.bool_] | None) -> NDArray[np.float64]:
        sd = self.config.read_noise
        if sd == 0:
            return x
        out = x.copy()
        for b in self._indices(members):
            out[b] = x[b] * (1.0 + sd * self._read_rngs[b].standard_normal(x[b].shape))
        return out

    def _indices(self, members: NDArray[np.bool_] | None) -> Sequence[int]:
        return range(self.batch_size) if members is None else np.flatnonzero(members).tolist()

    # ------------------------------------------------------------ programming
    def potentiate(self, mask: NDArray[np.bool_], amplitude_v: float, order: NDArray[np.intp]) -> None:
        """One pulse of ``amplitude_v`` (V, positive) on each device of ``mask`` (B, rows, cols).

        ``order`` lists the flat device indices (row * cols + col) in the order the
        pulses are sent, which is the order step noise is drawn in. Below the set
        threshold nothing moves.
        """
        if amplitude_v < self.config.set_threshold_v:
            return
        if not self.config.step_noise:
            physics.potentiate(self.state, mask)
            return
        moved = physics.movable(self.state, mask, +1)
        in_order = moved.reshape(self.batch_size, -1)[:, order]
        noise = np.ones(in_order.shape)
        noise[in_order] = self._step_factors(in_order.sum(axis=1))
        factors = np.empty_like(noise)
        factors[:, order] = noise
        physics.step(self.state, moved, +1, factors.reshape(moved.shape)[moved])

    def potentiate_counts(self, counts: NDArray[np.int64], amplitude_v: float) -> None:
        """``counts`` (B, rows, cols) pulses of ``amplitude_v`` V per device; noise-free crossbars only."""
        if self.config.step_noise:
            raise ValueError("potentiate_counts is exact only without step noise; pulse one by one")
        if amplitude_v >= self.config.set_threshold_v:
            physics.potentiate(self.state, counts)

    def _step_factors(self, per_crossbar: NDArray[np.int64]) -> NDArray[np.float64]:
        """Step-noise factors ``1 + sd * z``: ``per_crossbar[b]`` draws from crossbar b's stream, b by b."""
        draws = [self._step_rngs[b].standard_normal(int(n)) for b, n in enumerate(per_crossbar) if n]
        z = np.concatenate(draws) if draws else np.zeros(0)
        return 1.0 + self.config.step_noise * z

    def pulse_one(self, b: int, r: int, c: int, amplitude_v: float, width_s: float) -> None:
        """One pulse of any sign on device (r, c) of crossbar b.

        At or above the set threshold: one step up. At or below minus the reset
        threshold: a reset if at least ``reset_min_width_s`` long, else, when
        depression is enabled, one pulse down the depression curve from the present
        conductance (:mod:`crossbar_hil.emulator.depression`). Anything else leaves the device as it is.
        """
        cfg = self.config
        where = np.zeros(self.state.position.shape, dtype=bool)
        where[b, r, c] = True
        if amplitude_v >= cfg.set_threshold_v:
            direction = +1
        elif amplitude_v <= -cfg.reset_threshold_v:
            if width_s >= cfg.reset_min_width_s:
                physics.reset(self.state, where)
                return
            if self.depression_table is not None and not self.state.stuck[b, r, c]:
                per_crossbar = np.zeros(self.batch_size, dtype=np.int64)
                per_crossbar[b] = 1
                factors = self._step_factors(per_crossbar) if cfg.step_noise else None
                depress(self.state, where, self.depression_table, factors)
            return
        else:
            return
        moved = physics.movable(self.state, where, direction)
        if not moved[b, r, c]:
            return
        per_crossbar = np.zeros(self.batch_size, dtype=np.int64)
        per_crossbar[b] = 1
        factors = self._step_factors(per_crossbar) if cfg.step_noise else None
        physics.step(self.state, moved, direction, factors)

"""`CrossbarBatch`: many independent emulated crossbars at once, one per seed.

Crossbar ``b`` of a batch is the crossbar ``EmulatedCrossbar(config with seed=seeds[b])``:
the same shifts, stuck devices and noise streams (:func:`emulator.config.stream`),
the same physics (:mod:`emulator.physics`), the same pulse semantics. The
single-crossbar backend is a batch of one (:mod:`emulator.crossbar`).

Noise-free operations are whole-array numpy. With read or step noise each seed
keeps its own generator, drawn in the order the single crossbar would draw, so
that a batch reproduces the single runs bit for bit; this costs one generator
call per crossbar and operation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emulator import physics
from emulator.config import EmulatorConfig, Purpose, stream
from emulator.devices import DeviceModel


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
            stuck = np.stack([stream(s, Purpose.STUCK).random(shape) for s in self.seeds])
            stuck = stuck < cfg.stuck_fraction
        else:  # random() < 0 is never true: no draw needed for the same answer.
            stuck = np.zeros(shifts.shape, dtype=bool)
        self.state = physics.DeviceState.initial(table, cfg.scale_k, shifts, stuck)
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
    def potentiate(
        self,
        b: NDArray[np.intp],
        r: NDArray[np.intp],
        c: NDArray[np.intp],
        amplitude_v: float,
    ) -> None:
        """One pulse of ``amplitude_v`` (V, positive) on each device (b[k], r[k], c[k]).

        Pulses are listed crossbar by crossbar (``b`` ascending), each crossbar's in
        the order they are applied. Below the set threshold nothing moves.
        """
        if amplitude_v < self.config.set_threshold_v or b.size == 0:
            return
        counts = np.zeros(self.state.position.shape, dtype=np.int64)
        np.add.at(counts, (b, r, c), 1)
        if not self.config.step_noise:
            physics.potentiate(self.state, counts)
            return
        if counts.max() > 1:
            for k in range(b.size):  # The same device twice: strictly one step after the other.
                self.pulse_one(int(b[k]), int(r[k]), int(c[k]), amplitude_v, 0.0)
            return
        moved = physics.movable(self.state, counts > 0, +1)
        self._noisy_step(moved, moved[b, r, c], b, r, c, +1)

    def _noisy_step(
        self,
        moved: NDArray[np.bool_],
        pulse_moves: NDArray[np.bool_],
        b: NDArray[np.intp],
        r: NDArray[np.intp],
        c: NDArray[np.intp],
        direction: int,
    ) -> None:
        """Step the devices of ``moved``; noise drawn per crossbar in pulse order."""
        per_b = np.bincount(b[pulse_moves], minlength=self.batch_size)
        z = np.concatenate(
            [self._step_rngs[k].standard_normal(int(n)) for k, n in enumerate(per_b) if n] or [np.zeros(0)]
        )
        factors = np.ones(moved.shape)
        factors[b[pulse_moves], r[pulse_moves], c[pulse_moves]] = 1.0 + self.config.step_noise * z
        physics.step(self.state, moved, direction, factors[moved])

    def pulse_one(self, b: int, r: int, c: int, amplitude_v: float, width_s: float) -> None:
        """One pulse of any sign on device (r, c) of crossbar b.

        At or above the set threshold: one step up. At or below minus the reset
        threshold: a reset if at least ``reset_min_width_s`` long, else one step
        down when depression is enabled. Anything else leaves the device as it is.
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
            if not cfg.depression:
                return
            direction = -1
        else:
            return
        moved = physics.movable(self.state, where, direction)
        if not moved[b, r, c]:
            return
        if cfg.step_noise:
            idx = np.array([b]), np.array([r]), np.array([c])
            self._noisy_step(moved, np.array([True]), *idx, direction)
        else:
            physics.step(self.state, moved, direction)

"""Crossbar tiles of any shape: one differential pair of emulated devices per weight.

A tile of ``rows x cols`` logic weights holds ``2 x rows x cols`` devices: side 0 is
``G+``, side 1 is ``G-``, and the weight is ``W = G+ - G-`` (S). The devices are those
of the 4x4 emulator: every device replays one device table (a measured trace, Lim's
exponential model, Huang's LTP/LTD model), with the same scale factor ``K``, optional
lognormal device-to-device shifts, the Gaussian per-device scale of range and steps
(``range_sigma``, Lim's variation) and stuck devices. The physics is
:mod:`crossbar_hil.emulator.physics` on a state of shape ``(2, rows, cols)`` (the
leading axis, a batch axis there, is the pair side here), and depression is
:mod:`crossbar_hil.emulator.depression`: there is no second implementation.

Reads. A forward pass drives the rows with voltages and reads the column currents
(``I = V W``); the backward pass drives the columns and reads the row currents
(``I = V W^T``, the transposed read of Lim et al.). Both go through BLAS (``@``) for
speed: unlike the 4x4 emulator's fixed-order sums, a tile's currents may differ in
the last bits between machines.

Every random draw comes from :func:`crossbar_hil.emulator.config.stream` of the tile's
seed, one stream per purpose, as for a 4x4 crossbar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossbar_hil.emulator import physics
from crossbar_hil.emulator.config import Purpose, ShiftDistribution, stream
from crossbar_hil.emulator.depression import depress, potentiate_conductance_wise_at
from crossbar_hil.emulator.devices import DeviceModel, TraceDevice, default_device
from crossbar_hil.emulator.physics import put_flat

PLUS, MINUS = 0, 1
"""Index of ``G+`` and ``G-`` along a tile's leading (side) axis."""

Potentiation = Literal["conductance", "position"]
"""How a potentiating pulse moves a device that a depression left between table positions:
``conductance``: one pulse further up the potentiation curve from its present conductance;
``position``: to the next table position above it (:attr:`TileConfig.potentiation`)."""


class TileConfig(BaseModel):
    """Everything that defines an emulated tile (the 4x4 emulator's device options, any shape)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    rows: int = Field(ge=1, le=100_000, description="Inputs (rows) of the tile, bias row included.")
    cols: int = Field(ge=1, le=100_000, description="Outputs (columns, one pair each) of the tile.")
    trace: Path | None = Field(None, description="Trace to replay; None = device (or the built-in).")
    device: DeviceModel | None = Field(None, description="A parametric model instead of a trace.")
    scale_k: float = Field(10.0, gt=0, description="Scale factor K from table to tile (-).")
    shifts: ShiftDistribution | None = Field(
        None, description="Lognormal device-to-device shifts (S), as the 4x4 emulator's; None: none."
    )
    range_sigma: float = Field(
        0.0, ge=0, le=1, description="Sd of the per-device Gaussian scale N(1, sigma) of range and steps."
    )
    stuck_fraction: float = Field(0.0, ge=0, le=1, description="Share of devices that never move.")
    depression: bool = Field(False, description="Devices can be depressed (method c) along the model.")
    potentiation: Potentiation | None = Field(
        None,
        description="After a depression, a potentiating pulse moves a device 'conductance'-wise (one "
        "pulse up the curve from its present conductance) or 'position'-wise (to the next table "
        "position); None: by the device (see TileConfig.potentiation_law).",
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of every random draw of this tile.")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.trace is not None and self.device is not None:
            raise ValueError("give either trace or device, not both")
        if self.depression and self.device_model().depression_table() is None:
            raise ValueError(
                "depression: this device has no depression curve (a trace device has none); "
                "use a parametric device, or a method without depression"
            )
        return self

    def potentiation_law(self) -> Potentiation:
        """The potentiation law the tile's devices follow (:attr:`potentiation`, or by the device).

        A parametric model (Lim's exponential, Huang's LTP/LTD) is a law of the present
        conductance, ``G(n+1) = G(n) + alpha exp(-beta (G(n) - Gmin) / (Gmax - Gmin))``: after
        a depression the next up-pulse follows the conductance, so ``conductance``. A replayed
        measured trace is pulse-indexed: all it knows is the conductance after the n-th pulse
        from reset, not a law in G, so ``position`` (it has no depression curve either). The two
        differ only for a device a depression left between table positions; without
        depression every device stays on its table and both give the same bits. The 4x4 bench
        emulator (:mod:`crossbar_hil.emulator.crossbar`) keeps position-wise potentiation.
        """
        if self.potentiation is not None:
            return self.potentiation
        return "position" if self.trace is not None else "conductance"

    def device_model(self) -> DeviceModel:
        """The device every cell replays: the trace, the given model, or the built-in default."""
        if self.trace is not None:
            return TraceDevice(path=self.trace)
        return self.device if self.device is not None else default_device()


class Tile:
    """``2 x rows x cols`` emulated devices; see the module docstring.

    ``table`` (S) overrides the device model's table (e.g. one computed once for many tiles).
    """

    def __init__(self, config: TileConfig, table: NDArray[np.float64] | None = None) -> None:
        self.config = cfg = config
        model = cfg.device_model()
        table = np.asarray(model.table() if table is None else table, dtype=float)
        shape = (2, cfg.rows, cfg.cols)
        if cfg.shifts is None:
            shifts = np.zeros(shape)
        else:
            draws = cfg.shifts.draw(stream(cfg.seed, Purpose.SHIFTS), (2 * cfg.rows, cfg.cols))
            shifts = draws.reshape(shape)
        stuck = np.zeros(shape, dtype=bool)
        if cfg.stuck_fraction > 0:
            stuck = stream(cfg.seed, Purpose.STUCK).random(shape) < cfg.stuck_fraction
        scale = None
        if cfg.range_sigma > 0:
            draws = stream(cfg.seed, Purpose.RANGE_SCALE).normal(1.0, cfg.range_sigma, size=shape)
            scale = np.maximum(draws, 0.0)
        self.state = physics.DeviceState.initial(table, cfg.scale_k, shifts, stuck, scale)
        self.depression_table = model.depression_table() if cfg.depression else None
        """Conductance (S) after k depressing pulses from the top; None without depression."""
        self.conductance_wise = cfg.depression and cfg.potentiation_law() == "conductance"
        """Potentiation conductance-wise (:meth:`TileConfig.potentiation_law`); only a depression
        takes a device off its table, so without one it is position-wise, the same bits, faster."""
        self._g: NDArray[np.float64] | None = None
        self._w: NDArray[np.float64] | None = None
        self.n_weights = cfg.rows * cfg.cols
        """Logic weights (pairs): flat device ``i`` is side ``i // n_weights`` of weight ``i % n_weights``."""
        table = self.state.table
        self._g_span_siemens = float(cfg.scale_k * (table.max() - table[0]))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of logic weights."""
        return self.config.rows, self.config.cols

    @property
    def g_span_siemens(self) -> float:
        """Conductance span of one ideal device, ``K (max(G_exp) - G_exp[0])`` (S): the weight unit."""
        return self._g_span_siemens

    # ------------------------------------------------------------ reads
    def conductances(self) -> NDArray[np.float64]:
        """Every device's conductance (S), shape (2, rows, cols); side 0 is G+, side 1 G-.

        A read-only view of the tile's own array, kept up to date in place as devices are
        programmed: copy it to keep a read.
        """
        return _read_only(self._conductance_map())

    def _conductance_map(self) -> NDArray[np.float64]:
        """The tile's own (writable) conductance map (S), computed when first needed."""
        if self._g is None:
            self._g = physics.conductances(self.state)
        return self._g

    def weights_siemens(self) -> NDArray[np.float64]:
        """Logic weights ``G+ - G-`` (S), shape (rows, cols); the tile's own array, as
        :meth:`conductances`."""
        if self._w is None:
            g = self._conductance_map()
            self._w = g[PLUS] - g[MINUS]
        return _read_only(self._w)

    def forward(self, row_v: NDArray[np.float64]) -> NDArray[np.float64]:
        """Column currents (A) for row voltages (V): ``(..., rows) -> (..., cols)``, ``I = V W``."""
        return row_v @ self.weights_siemens()

    def backward(self, col_v: NDArray[np.float64]) -> NDArray[np.float64]:
        """Row currents (A) for column voltages (V), the transposed read: ``(..., cols) -> (..., rows)``."""
        return col_v @ self.weights_siemens().T

    # ------------------------------------------------------------ programming
    def _changed(self) -> None:
        """Forget the conductance and weight maps (recomputed at the next read)."""
        self._g = self._w = None

    def device_index(
        self, sides: NDArray[np.intp] | int, rows: NDArray[np.intp], cols: NDArray[np.intp]
    ) -> NDArray[np.intp]:
        """Flat (C-order) indices of devices (sides, rows, cols) in the (2, rows, cols) device arrays."""
        n_rows, n_cols = self.shape
        return np.asarray((sides * n_rows + rows) * n_cols + cols, dtype=np.intp)

    def _changed_at(self, flat: NDArray[np.intp]) -> None:
        """Recompute the maps where the devices ``flat`` (flat indices) changed: the same bits as
        a full recompute, for those devices' cost."""
        if self._g is None:
            return
        put_flat(self._g, flat, physics.conductances_at(self.state, flat))
        if self._w is not None and type(self).weights_siemens is not Tile.weights_siemens:
            self._w = None  # a subclass's own weight map (e.g. a self-adaptive weight): rebuilt when read
        elif self._w is not None:
            weight = flat % self.n_weights
            put_flat(self._w, weight, self._g.take(weight) - self._g.take(weight + self.n_weights))

    def potentiate(self, counts: NDArray[np.bool_] | NDArray[np.int64]) -> None:
        """``counts`` (2, rows, cols) potentiating pulses per device (or a mask of one each), by the
        tile's potentiation law (:attr:`conductance_wise`)."""
        if self.conductance_wise:
            c = np.asarray(counts, dtype=np.int64).reshape(-1)
            flat = np.flatnonzero(c)
            potentiate_conductance_wise_at(self.state, flat, c[flat])
        else:
            physics.potentiate(self.state, counts)
        self._changed()

    def potentiate_at(self, flat: NDArray[np.intp], counts: NDArray[np.int64] | int = 1) -> None:
        """``counts`` potentiating pulses on each device ``flat`` (distinct flat indices, see
        :meth:`device_index`): :meth:`potentiate` of a sparse update, for its cost only."""
        if self.conductance_wise:
            potentiate_conductance_wise_at(self.state, flat, counts)
        else:
            physics.potentiate_at(self.state, flat, counts)
        self._changed_at(flat)

    def reset(self, where: NDArray[np.bool_]) -> None:
        """Reset the devices of ``where`` (2, rows, cols) to position 0."""
        physics.reset(self.state, where)
        self._changed()

    def depress(self, where: NDArray[np.bool_]) -> None:
        """One depressing pulse on each device of ``where`` (2, rows, cols); needs ``depression``."""
        if self.depression_table is None:
            raise ValueError("this tile's devices cannot be depressed (TileConfig.depression is off)")
        depress(self.state, where, self.depression_table)
        self._changed_at(np.flatnonzero(where))

    def positions(self) -> NDArray[np.int64]:
        """Every device's position along the table (pulses since reset, saturating), (2, rows, cols)."""
        return self.state.position.copy()

    def program_positions(self, positions: NDArray[np.int64]) -> None:
        """Reset every device, then pulse it ``positions`` times (the open-loop transfer of a
        weight map computed elsewhere, e.g. off-chip training)."""
        self.reset(np.ones(self.state.position.shape, dtype=bool))
        self.potentiate(np.asarray(positions, dtype=np.int64))


def _read_only(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """A read-only view of ``a``: a caller cannot write into a tile's cached maps."""
    view = a.view()
    view.flags.writeable = False
    return view

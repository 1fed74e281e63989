"""Device physics of emulated crossbars, on arrays with a leading batch axis.

Every function here works on ``B`` independent crossbars at once: positions,
conductances and shifts have shape ``(B, rows, cols)``. The single-crossbar
backend (:class:`crossbar_hil.emulator.crossbar.EmulatedCrossbar`) is the case ``B = 1`` of
:class:`crossbar_hil.emulator.batched.CrossbarBatch`, which calls these functions; there is
no second implementation.

Device (b, j, k) sits at position ``m`` of the device table ``G_exp`` (S) and
has a fixed shift (S); its conductance is ``K * ((g_dev - G_exp[0]) + shift)``
where ``g_dev = G_exp[m]`` without step noise. A potentiating step moves ``m``
one position up and saturates at the end of the table; a reset returns it to 0.

Sums are written out in a fixed order instead of going through BLAS, whose
summation order depends on the CPU: a batch and a single crossbar (and two
machines) then give the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass
class DeviceState:
    """The state of ``B`` crossbars of devices that replay one device table.

    Arrays are updated in place by the functions of this module.
    """

    table: NDArray[np.float64]
    """Device table ``G_exp[m]`` (S) for positions m = 0..n_max, shape (n_max + 1,)."""
    scale_k: float
    """Scale factor K from the table to the crossbar (dimensionless)."""
    shifts_siemens: NDArray[np.float64]
    """Device-to-device shift of every device (S), shape (B, rows, cols)."""
    stuck: NDArray[np.bool_]
    """Devices that never move, shape (B, rows, cols)."""
    position: NDArray[np.int64]
    """Position of every device along the table, shape (B, rows, cols)."""
    g_dev: NDArray[np.float64]
    """Table-scale conductance of every device (S); ``table[position]`` without step noise."""
    range_scale: NDArray[np.float64] | None = None
    """Per-device scale of range and steps (B, rows, cols), or None for 1 (the default)."""

    @classmethod
    def initial(
        cls,
        table: NDArray[np.float64],
        scale_k: float,
        shifts_siemens: NDArray[np.float64],
        stuck: NDArray[np.bool_],
        range_scale: NDArray[np.float64] | None = None,
    ) -> DeviceState:
        """Every device at position 0 (just reset)."""
        shape = shifts_siemens.shape
        return cls(
            table=table,
            scale_k=scale_k,
            shifts_siemens=shifts_siemens,
            stuck=stuck,
            position=np.zeros(shape, dtype=np.int64),
            g_dev=np.full(shape, table[0]),
            range_scale=range_scale,
        )

    @property
    def n_max(self) -> int:
        """Last position of the table (saturation)."""
        return int(self.table.size - 1)


def conductances(state: DeviceState) -> NDArray[np.float64]:
    """True (noise-free) conductances (S), shape (B, rows, cols).

    ``K * (s * (g_dev - G_exp[0]) + shift)`` with ``s`` the per-device range scale
    (left out when there is none, so the default is computed exactly as before).
    """
    return _conductances(state, state.g_dev, state.range_scale, state.shifts_siemens)


def conductances_at(state: DeviceState, flat: NDArray[np.intp]) -> NDArray[np.float64]:
    """:func:`conductances` of the devices ``flat`` only (S), the same bits, shaped as ``flat``.

    ``flat`` indexes the state's arrays flattened in C order (as ``numpy.take``): a tile
    whose update touched a few devices recomputes those, not the whole map.
    """
    scale = None if state.range_scale is None else state.range_scale.take(flat)
    return _conductances(state, state.g_dev.take(flat), scale, state.shifts_siemens.take(flat))


def _conductances(
    state: DeviceState,
    g_dev: NDArray[np.float64],
    range_scale: NDArray[np.float64] | None,
    shifts_siemens: NDArray[np.float64],
) -> NDArray[np.float64]:
    rise = g_dev - state.table[0]
    if range_scale is not None:
        rise = range_scale * rise
    return state.scale_k * (rise + shifts_siemens)


def column_currents(row_v: NDArray[np.float64], g: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column currents (A) ``I_k = sum_j V_j G_jk``, summed over rows j in order.

    ``row_v`` (N, rows) V, one row vector per pattern; ``g`` (B, rows, cols) S.
    Returns (B, N, cols).
    """
    out = row_v[None, :, 0, None] * g[:, None, 0, :]
    for j in range(1, g.shape[1]):
        out = out + row_v[None, :, j, None] * g[:, None, j, :]
    return out


def potentiate(state: DeviceState, counts: NDArray[np.int64] | NDArray[np.bool_]) -> None:
    """``counts`` (B, rows, cols) potentiating pulses per device (or a mask of one each), no step noise.

    k pulses move a device to ``min(m + k, n_max)``, exactly as k pulses one after
    the other; stuck devices stay where they are.
    """
    state.position, state.g_dev = _potentiated(state, state.stuck, state.position, state.g_dev, counts)


def potentiate_at(state: DeviceState, flat: NDArray[np.intp], counts: NDArray[np.int64] | int = 1) -> None:
    """:func:`potentiate` of the devices ``flat`` only (distinct C-order flat indices), ``counts`` each."""
    stuck, position = state.stuck.take(flat), state.position.take(flat)
    if isinstance(counts, int) and counts > 0 and not stuck.any():  # the common case, fewer passes
        position = np.minimum(position + counts, state.n_max)
        g_dev = state.table.take(position)
    else:
        position, g_dev = _potentiated(state, stuck, position, state.g_dev.take(flat), counts)
    put_flat(state.position, flat, position)
    put_flat(state.g_dev, flat, g_dev)


def put_flat(a: NDArray[Any], flat: NDArray[np.intp], values: Any) -> None:
    """``a.flat[flat] = values`` (as ``numpy.put``), through a flat view when ``a`` is C-contiguous
    (twice as fast as ``put`` for the index arrays of an update)."""
    if a.flags.c_contiguous:
        a.reshape(-1)[flat] = values
    else:
        a.put(flat, values)


def _potentiated(
    state: DeviceState,
    stuck: NDArray[np.bool_],
    position: NDArray[np.int64],
    g_dev: NDArray[np.float64],
    counts: NDArray[np.int64] | NDArray[np.bool_] | int,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Positions and table conductances of devices at ``position`` after ``counts`` pulses."""
    counts = np.where(stuck, 0, counts)
    position = np.minimum(position + counts, state.n_max)
    return position, np.where(counts > 0, state.table.take(position), g_dev)


def movable(state: DeviceState, where: NDArray[np.bool_], direction: int) -> NDArray[np.bool_]:
    """Devices of ``where`` that one step in ``direction`` (+1 up, -1 down) would move.

    Stuck devices and devices at the end of the table in that direction do not move.
    """
    target = state.position + direction
    return where & ~state.stuck & (target >= 0) & (target <= state.n_max)


def step(
    state: DeviceState,
    moved: NDArray[np.bool_],
    direction: int,
    factors: NDArray[np.float64] | None = None,
) -> None:
    """Move the devices of ``moved`` (from :func:`movable`) one step in ``direction``.

    Without ``factors`` a device lands on its table value. With step noise,
    ``factors`` (one per moved device, in C order of ``moved``) multiply the table
    step, and the device's conductance accumulates the noisy steps.
    """
    m = state.position[moved]
    target = m + direction
    if factors is None:
        state.g_dev[moved] = state.table[target]
    else:
        steps = np.diff(state.table)
        size = steps[m] if direction > 0 else -steps[target]
        state.g_dev[moved] = state.g_dev[moved] + size * factors
    state.position[moved] = target


def reset(state: DeviceState, where: NDArray[np.bool_]) -> None:
    """Return the devices of ``where`` (not stuck ones) to position 0."""
    hit = where & ~state.stuck
    state.position[hit] = 0
    state.g_dev[hit] = state.table[0]


def reset_at(state: DeviceState, flat: NDArray[np.intp]) -> None:
    """:func:`reset` of the devices ``flat`` (C-order flat indices) that are not stuck."""
    hit = flat[~state.stuck.take(flat)]
    put_flat(state.position, hit, 0)
    put_flat(state.g_dev, hit, state.table[0])


def rescale_shifts(x: NDArray[np.float64], low_siemens: float, high_siemens: float) -> NDArray[np.float64]:
    """Min-max rescale each crossbar's draws ``x`` (B, rows, cols) into [low, high] (S).

    A crossbar whose draws are all equal gets ``low`` everywhere.
    """
    lo = x.min(axis=(1, 2), keepdims=True)
    span = x.max(axis=(1, 2), keepdims=True) - lo
    flat = span == 0
    scaled = low_siemens + (x - lo) / np.where(flat, 1.0, span) * (high_siemens - low_siemens)
    return np.where(flat, low_siemens, scaled)

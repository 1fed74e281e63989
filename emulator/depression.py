"""Depression of emulated devices along a depression table, conductance-wise.

A device's depression table ``down[k]`` (S) is its conductance after k
depressing pulses from the top of its range (:meth:`crossbar_hil.emulator.devices._Model.depression_table`).
As in NeuroSim (Huang et al.), a depressing pulse acts on the device's present
conductance ``g``: find where ``g`` sits on the depression curve (a fractional
pulse count, by linear interpolation) and move one pulse further down it. A
device above the curve's top starts from its top; a device at the bottom stays.

After a depression the device's position is the highest potentiation-table position whose
conductance is not above its new conductance. The 4x4 crossbars potentiate position-based
(:mod:`crossbar_hil.emulator.crossbar`): the next potentiating pulse moves such a device to the
next table position, by at most one table step (on Lim's beta_nl 2 curve about half a step of the
model). Measured tables need not be monotone; both lookups use the monotone envelope of the table.

The single and the batched crossbar share :func:`depress` (a crossbar is a batch of one).

:func:`potentiate_conductance_wise` is the same law upwards, for devices whose model moves them
conductance-wise in both directions (Huang et al.'s SI: after a depression, the next potentiating
pulse moves a device one pulse up its potentiation curve *from its present conductance*, not to
the next table position), and Lim's model, whose step is a function of the present conductance.
The self-adaptive tiles use it (``emulator/network/self_adaptive.py``), and so do the tiles of a
parametric device (:func:`potentiate_conductance_wise_at`, ``TileConfig.potentiation``); the 4x4
crossbars keep position-based potentiation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crossbar_hil.emulator import physics
from crossbar_hil.emulator.physics import DeviceState, put_flat


def depressed(
    g_siemens: NDArray[np.float64] | float,
    down_table: NDArray[np.float64],
    factor: NDArray[np.float64] | float = 1.0,
) -> NDArray[np.float64]:
    """Conductance (S) after one depressing pulse from ``g_siemens``.

    ``factor`` (cycle-to-cycle noise, 1 = none) multiplies the step; the result
    never goes below the bottom of the curve.
    """
    env = np.minimum.accumulate(np.asarray(down_table, dtype=float))  # non-increasing
    k_axis = np.arange(env.size, dtype=float)
    g = np.asarray(g_siemens, dtype=float)
    k = np.interp(g, env[::-1], k_axis[::-1])  # fractional pulses from the top
    step = (g - np.interp(k + 1.0, k_axis, env)) * factor
    return np.maximum(g - step, env[-1])


def potentiated(
    g_siemens: NDArray[np.float64] | float,
    up_table: NDArray[np.float64],
    factor: NDArray[np.float64] | float = 1.0,
) -> NDArray[np.float64]:
    """Conductance (S) after one potentiating pulse from ``g_siemens``, conductance-wise: find where
    ``g`` sits on the potentiation curve (a fractional pulse count, by linear interpolation on its
    monotone envelope) and move one pulse further up it. ``factor`` multiplies the step; the
    result never goes above the top of the curve. From a table position it is the next one."""
    return _potentiated_on(g_siemens, np.maximum.accumulate(np.asarray(up_table, dtype=float)), factor)


def _potentiated_on(
    g_siemens: NDArray[np.float64] | float,
    env: NDArray[np.float64],
    factor: NDArray[np.float64] | float = 1.0,
) -> NDArray[np.float64]:
    """:func:`potentiated` on the table's monotone envelope ``env`` (computed once by the caller)."""
    k_axis = np.arange(env.size, dtype=float)
    g = np.asarray(g_siemens, dtype=float)
    k = np.interp(g, env, k_axis)
    step = (np.interp(k + 1.0, k_axis, env) - g) * factor
    return np.minimum(g + step, env[-1])


def potentiate_conductance_wise(state: DeviceState, where: NDArray[np.bool_]) -> None:
    """One potentiating pulse, conductance-wise (:func:`potentiated`), on each device of ``where``
    (B, rows, cols) that is not stuck; its position becomes the highest table position not above
    its new conductance."""
    hit = where & ~state.stuck
    g = potentiated(state.g_dev[hit], state.table)
    state.g_dev[hit] = g
    state.position[hit] = position_at_or_below(g, state.table)


def potentiate_conductance_wise_at(
    state: DeviceState, flat: NDArray[np.intp], counts: NDArray[np.int64] | int = 1
) -> None:
    """``counts`` potentiating pulses, conductance-wise, on each device ``flat`` (distinct C-order flat
    indices) that is not stuck.

    A device on its table (``g_dev == table[position]``: never depressed since its last reset)
    moves position-wise, which is conductance-wise from a table position, with the table's exact
    bits (:func:`crossbar_hil.emulator.physics.potentiate_at`); a device a depression left between
    positions moves by :func:`potentiated`, pulse by pulse, until it reaches the top (back on the
    table).
    """
    g0, pos0 = state.g_dev.take(flat), state.position.take(flat)
    off = (g0 != state.table.take(pos0)) & ~state.stuck.take(flat)
    if not off.any():
        physics.potentiate_at(state, flat, counts)
        return
    c = np.broadcast_to(np.asarray(counts, dtype=np.int64), flat.shape)
    physics.potentiate_at(state, flat[~off], counts if isinstance(counts, int) else c[~off])
    idx, left, g = flat[off], c[off].copy(), g0[off]
    env = np.maximum.accumulate(state.table)
    while (left > 0).any():
        g = np.where(left > 0, _potentiated_on(g, env), g)
        left -= 1
    put_flat(state.g_dev, idx, g)
    put_flat(state.position, idx, position_at_or_below(g, env))


def position_at_or_below(
    g_siemens: NDArray[np.float64] | float, up_table: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Highest potentiation position whose (envelope) conductance is not above ``g_siemens``; at least 0."""
    env = np.maximum.accumulate(np.asarray(up_table, dtype=float))  # non-decreasing
    m = np.searchsorted(env, np.asarray(g_siemens, dtype=float), side="right") - 1
    return np.maximum(m, 0).astype(np.int64)


def depress(
    state: DeviceState,
    where: NDArray[np.bool_],
    down_table: NDArray[np.float64],
    factors: NDArray[np.float64] | None = None,
) -> None:
    """One depressing pulse on each device of ``where`` (B, rows, cols) that is not stuck.

    ``factors`` (one per device of ``where & ~stuck``, C order) are the
    cycle-to-cycle noise of the steps; None for none.
    """
    hit = where & ~state.stuck
    g = depressed(state.g_dev[hit], down_table, 1.0 if factors is None else factors)
    state.g_dev[hit] = g
    state.position[hit] = position_at_or_below(g, state.table)

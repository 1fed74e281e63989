"""Lim et al.'s device for a given nonlinearity and number of levels.

Lim et al. describe a device by its nonlinearity ``beta_nl`` and its dynamic range
``n_max``: the exponential model (:class:`~crossbar_hil.emulator.devices.ExponentialDevice`)
goes from Gmin to Gmax in exactly ``n_max`` pulses. The step at Gmin, ``alpha``, that
makes it so is found here by bisection (the table is monotone in ``alpha``).
"""

from __future__ import annotations

import numpy as np

from crossbar_hil.emulator.devices import ExponentialDevice, exponential_tables

G_MIN_SIEMENS, G_MAX_SIEMENS = 1e-7, 2e-7
"""Conductance range of the experiments' parametric devices (S); only the ratios matter."""


def lim_device(
    beta_nl: float, levels: int, g_min_siemens: float = G_MIN_SIEMENS, g_max_siemens: float = G_MAX_SIEMENS
) -> ExponentialDevice:
    """The exponential device with nonlinearity ``beta_nl`` that reaches Gmax at pulse ``levels``.

    Its table has ``levels + 1`` positions (0 = after reset, ``levels`` = Gmax).
    """
    span = g_max_siemens - g_min_siemens
    lo, hi = span / levels * 1e-3, span  # hi reaches Gmax in one pulse
    lo_arr, hi_arr = np.array([g_min_siemens]), np.array([g_max_siemens])
    beta = np.array([float(beta_nl)])
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        table = exponential_tables(lo_arr, hi_arr, np.array([mid]), beta, levels)[0]
        if table[-1] >= g_max_siemens - 1e-9 * span:
            hi = mid
        else:
            lo = mid
    return ExponentialDevice(
        g_min_siemens=g_min_siemens,
        g_max_siemens=g_max_siemens,
        alpha_siemens=hi,
        beta_nl=beta_nl,
        n_max=levels,
    )

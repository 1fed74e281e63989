"""Huang et al.'s device for given LTP / LTD nonlinearities and bits, as the emulator's LTP/LTD model.

Huang et al.'s supporting code (SI, "Step2: Define the memristor parameters" and the
``SGD`` class) moves a device of range ``R = Gmax - Gmin`` with ``P_max = 2**bit - 1``
pulses from Gmin to Gmax, each pulse conductance-wise:

* LTP: ``G' = G + (1 - exp(-A_p / P_max)) (R B_p - (G - Gmin))``, ``B_p = 1 / (1 - exp(-A_p))``;
* LTD: ``G' = G - (exp(A_d / P_max) - 1) (R B_d - (G - Gmin))``, ``B_d = 1 / (1 - exp(-A_d))``,

with ``A_p > 0`` and ``A_d < 0`` (their default ``A_p = 1``, ``A_d = -1``; the code truncates
the exponentials to third-order series, a difference below 1e-9 of a step at 255 pulses).
Solved from Gmin (LTP) and from Gmax (LTD) these are exactly the curves of
:class:`~crossbar_hil.emulator.devices.LtpLtdDevice`: ``G(P) = Gmin + B (1 - exp(-P / a_p))``
up and ``G(P) = Gmax - B_d' (1 - exp(-P / a_d))`` down, with nonlinearities in pulses
``a_p = P_max / A_p`` and ``a_d = P_max / -A_d``. So Huang's device is that model, the
4x4 emulator's, with no second implementation (``tests/emulator/network/test_huang_device.py``
checks it against the SI's recursion, level by level).

Both directions are conductance-wise, as in the SI. A crossbar's potentiation is
position-wise (a pulse moves a device to the next table position,
:mod:`crossbar_hil.emulator.physics`): after a depression its next potentiating pulse lands on
the next table position above the present conductance, half an SI step on average (measured:
0.50 of it at A_p = 1 over 50 LTD/LTP pairs from mid-range, and a device that alternates stays
put where the SI's drifts up by 0.08 of its range). The self-adaptive tiles therefore potentiate
with :func:`~crossbar_hil.emulator.depression.potentiate_conductance_wise`, the depression law
upwards, and follow the SI's recursion through any sequence of LTP and LTD (tested).
"""

from __future__ import annotations

from crossbar_hil.emulator.devices import LtpLtdDevice
from crossbar_hil.emulator.network.lim_device import G_MAX_SIEMENS, G_MIN_SIEMENS


def pulses_full_range(bits: int) -> int:
    """``P_max = 2**bits - 1``: pulses from Gmin to Gmax (Huang's ``Pmax``)."""
    return 2**bits - 1


def huang_device(
    a_p: float,
    a_d: float,
    bits: int = 8,
    g_min_siemens: float = G_MIN_SIEMENS,
    g_max_siemens: float = G_MAX_SIEMENS,
) -> LtpLtdDevice:
    """The LTP/LTD device of Huang's nonlinearities ``a_p`` (> 0) and ``a_d`` (< 0), ``bits`` bits.

    Raises ValueError naming the parameter when a sign is not Huang's convention.
    """
    if not a_p > 0:
        raise ValueError(f"a_p={a_p}: Huang's LTP nonlinearity must be > 0 (their default 1)")
    if not a_d < 0:
        raise ValueError(f"a_d={a_d}: Huang's LTD nonlinearity must be < 0 (their default -1)")
    p_max = pulses_full_range(bits)
    return LtpLtdDevice(
        g_min_siemens=g_min_siemens,
        g_max_siemens=g_max_siemens,
        a_p=p_max / a_p,
        a_d=p_max / -a_d,
        bits=bits,
    )

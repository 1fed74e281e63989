"""Device models, and the built-in device against the reference trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from crossbar_hil.emulator.devices import (
    ExponentialDevice,
    LtpLtdDevice,
    default_device,
    default_device_record,
)
from crossbar_hil.emulator.fit import fit_exponential
from crossbar_hil.trace_file import load_trace


def test_exponential_model_saturates_with_shrinking_steps() -> None:
    g = ExponentialDevice(
        g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=1e-8, beta_nl=3.0, n_max=40
    ).table()
    steps = np.diff(g)
    assert g[0] == 1e-7 and g.size == 41 and g.max() <= 2e-7
    assert np.all(steps >= 0) and np.all(np.diff(steps) <= 1e-22)


def test_exponential_model_with_zero_nonlinearity_is_linear_until_gmax() -> None:
    g = ExponentialDevice(
        g_min_siemens=1e-7, g_max_siemens=2e-7, alpha_siemens=1e-8, beta_nl=0.0, n_max=15
    ).table()
    np.testing.assert_allclose(g[:11], 1e-7 + 1e-8 * np.arange(11))
    assert np.all(g[10:] == pytest.approx(2e-7))


def test_ltp_model_spans_its_levels() -> None:
    g = LtpLtdDevice(g_min_siemens=1e-7, g_max_siemens=3e-7, a_p=5.0, bits=5).table()
    assert g.size == 2**5
    assert g[0] == pytest.approx(1e-7) and g[-1] == pytest.approx(3e-7)
    assert np.all(np.diff(g) > 0) and np.diff(g)[0] > np.diff(g)[-1]


@pytest.mark.parametrize("cls", [ExponentialDevice, LtpLtdDevice])
def test_models_reject_gmax_below_gmin(cls: type) -> None:
    extra = {"alpha_siemens": 1e-8, "beta_nl": 1.0} if cls is ExponentialDevice else {"a_p": 1.0}
    with pytest.raises(ValidationError, match="must exceed g_min_siemens"):
        cls(g_min_siemens=2e-7, g_max_siemens=1e-7, **extra)


def test_default_device_stays_within_tolerance_of_the_trace(reference_trace_path: Path) -> None:
    """The built-in device must track SP291D1NR100 at every pulse within the stated tolerance."""
    record = default_device_record()
    trace = load_trace(reference_trace_path).conductances_siemens
    model = default_device().table()
    assert model.size == trace.size
    residual = np.abs(model - trace)
    assert residual.max() <= record.tolerance_siemens, f"worst pulse {int(residual.argmax())}"
    assert np.sqrt(np.mean(residual**2)) == pytest.approx(record.rms_residual_siemens, rel=1e-6)
    # Relative to the trace's own rise, the tolerance is what a user should know.
    assert record.tolerance_siemens / (trace.max() - trace[0]) < 0.2


def test_stored_fit_is_reproducible_from_the_trace(reference_trace_path: Path) -> None:
    stored = default_device()
    refit = fit_exponential(load_trace(reference_trace_path))
    assert refit.g_min_siemens == stored.g_min_siemens
    np.testing.assert_allclose(refit.table(), stored.table(), rtol=1e-12)


def test_a_trace_rewritten_under_the_same_name_is_read_again(tmp_path: Path) -> None:
    from crossbar_hil.emulator.devices import TraceDevice

    f = tmp_path / "dev.csv"
    f.write_text("1e-7\n2e-7\n")
    assert TraceDevice(path=f).table().tolist() == [1e-7, 2e-7]
    f.write_text("1e-7\n3e-7\n4e-7\n")
    assert TraceDevice(path=f).table().tolist() == [1e-7, 3e-7, 4e-7]

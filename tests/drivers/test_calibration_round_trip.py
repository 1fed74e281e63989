"""A calibration through each driver: characterize, store, reuse by a run, export, replay (issue 16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import TRANSPORTS, served

from crossbar_hil.api.cli.calibrations import export_files
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.procedures.calibrate import calibrate
from crossbar_hil.procedures.training import run_training
from crossbar_hil.runs.calibrations import Calibrations
from crossbar_hil.runs.store import RunStore
from crossbar_hil.trace_file import load_trace
from crossbar_hil.training.config import RunConfig

pytestmark = pytest.mark.system

EMU = EmulatorConfig(seed=5, range_sigma=0.1)  # devices of different ranges: one curve per device


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_calibration_through_the_driver_is_stored_reused_exported_and_replayed(
    transport: str, tmp_path: Path
) -> None:
    truth = EmulatedCrossbar(EMU)
    expected = truth.range_scale[..., None] * truth.device_curve_siemens()  # each device's own curve
    with served(transport, EMU) as (_, backend):
        cal = calibrate(backend, n_pulses=30)
        identity = backend.info.identity
    assert cal.identity == identity and (cal.rows, cal.cols) == (4, 4) and len(cal.devices) == 16
    np.testing.assert_allclose(cal.curves_siemens(), expected[..., :31], rtol=1e-9, atol=1e-15)

    store = RunStore(tmp_path / "runs.sqlite3")
    try:
        cals = Calibrations(store)
        cal_id = cals.add(cal)
        assert [c["id"] for c in cals.list(identity)] == [cal_id] and cals.list("another") == []
        assert cals.get(cal_id) == cal
        with served(transport, EMU) as (_, backend):
            run = run_training(RunConfig(), backend=backend, calibrations=cals.newest)
        source = run.result.curve_source or ""
        assert source.startswith("calibration of ") and cal_id in source
        assert run.result.probe_pulses == 0  # nothing learned: the calibration gave every curve
        stored = np.asarray(run.config.training.device_curve_siemens)
        np.testing.assert_array_equal(stored, cal.curves_siemens())  # the run's config holds the curves
        assert run.result.converged

        files = export_files(cals.get(cal_id), tmp_path / "export")
        assert len(files) == 17
        trace = load_trace(tmp_path / "export" / "r2c3.dat")
        replay = EmulatedCrossbar(EmulatorConfig(trace=tmp_path / "export" / "r2c3.dat", scale_k=1.0))
        row = cal.devices.index((2, 3))
        np.testing.assert_allclose(trace.conductances_siemens, cal.conductances_siemens[row], rtol=1e-6)
        np.testing.assert_allclose(replay.table, cal.conductances_siemens[row], rtol=1e-6)
        cals.delete(cal_id)
        assert cals.list() == []
    finally:
        store.close()


def test_a_run_without_a_calibration_of_its_instrument_learns_in_situ(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    try:
        cals = Calibrations(store)
        cals.add(calibrate(EmulatedCrossbar(EmulatorConfig(seed=1)), n_pulses=5))  # another instrument
        run = run_training(RunConfig(), backend=EmulatedCrossbar(EMU), calibrations=cals.newest)
        assert run.result.curve_source == "learned in situ"
        opted_out = run_training(
            RunConfig(training={"curve_source": "learned"}),
            backend=EmulatedCrossbar(EmulatorConfig(seed=1)),
            calibrations=cals.newest,
        )
        assert opted_out.result.curve_source == "learned in situ"
    finally:
        store.close()

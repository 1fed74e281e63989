"""A run that can no longer learn ends by itself, instruments start each run from the same
state, and a run leaves what a lab expects (timestamps, version, instrument, CSV history,
advice when it does not converge). Through the real CLI; ``hil emulate`` as the instrument."""

from __future__ import annotations

import csv
import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import crossbar_hil
from crossbar_hil.training.config import TrainingConfig
from tests.api.conftest import Running
from tests.api.conftest import hil as run_hil

pytestmark = pytest.mark.system


# ------------------------------------------------------------------ 3. patience
def test_a_saturated_run_ends_by_itself_and_stays_small(tmp_path: Path) -> None:
    args = ("train", "-q", "--builtin", "--preset", "reference", "--max-epochs", "100000", "--patience", "10")
    done = run_hil(*args, "--json", "run.json", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "run.json").read_text())
    assert result["outcome"] == "stalled" and result["epochs"] < 100
    assert "because no device moved in the last 10 epochs (patience 10)" in done.stdout
    assert (tmp_path / "run.json").stat().st_size < 200_000


def test_a_long_history_is_thinned_in_the_json_and_complete_in_the_csv(tmp_path: Path) -> None:
    args = ("train", "-q", "--builtin", "--preset", "reference", "--max-epochs", "2500", "--patience", "0")
    args = (*args, "--json", "run.json")
    done = run_hil(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "run.json").read_text())
    assert result["outcome"] == "max_epochs" and result["history_epochs"] == 2501
    epochs = [r["epoch"] for r in result["history"]]
    assert len(epochs) == 1000 and epochs[0] == 0 and epochs[-1] == 2500
    with (tmp_path / "run.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(2501))
    assert float(rows[-1]["g_0_0_siemens"]) == result["history"][-1]["conductances_siemens"][0][0]


# ------------------------------------------------------------------ 4. start state
@pytest.fixture
def emulate(tmp_path: Path) -> Iterator[str]:
    """``hil emulate`` on a free port; yields its VISA resource, stopped with SIGTERM after (exit 0)."""
    server = Running("emulate", "--builtin", "--tcp", "127.0.0.1:0", cwd=tmp_path)
    line = server.wait_for(r"^VISA resource: ")
    yield line.split(": ", 1)[1].strip()
    server.proc.send_signal(signal.SIGTERM)
    assert server.finish() == 0 and re.search(r"stopped after \d+ commands", server.out)


def test_a_second_run_on_the_same_instrument_starts_from_reset_devices(emulate: str, tmp_path: Path) -> None:
    args = ("train", "-q", "--resource", emulate, "--preset", "reference", "--max-epochs", "30")
    first = run_hil(*args, "--json", "first.json", cwd=tmp_path)
    second = run_hil(*args, "--json", "second.json", cwd=tmp_path)
    assert first.returncode == second.returncode == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("first", "second"))
    assert a["history"] == b["history"]  # the same run again, epoch for epoch
    devices = [[r, c] for r in range(4) for c in range(4)]
    assert b["start_state"] == "reset" and b["start_reset_devices"] == devices
    assert "start: 16 devices reset before training" in second.stdout


def test_start_as_is_continues_from_the_devices_where_they_are(emulate: str, tmp_path: Path) -> None:
    args = (
        "train",
        "-q",
        "--resource",
        emulate,
        "--preset",
        "reference",
        "--max-epochs",
        "5",
        "--start",
        "as-is",
    )
    first = run_hil(*args, "--json", "first.json", cwd=tmp_path)
    second = run_hil(*args, "--json", "second.json", cwd=tmp_path)
    assert first.returncode == second.returncode == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("first", "second"))
    assert b["history"][0]["conductances_siemens"] == a["history"][-1]["conductances_siemens"]
    assert b["start_state"] == "as_is" and b["start_reset_devices"] == []
    assert "start: devices as they were (not reset)" in second.stdout


# ------------------------------------------------------------------ 8. what a lab expects
def test_the_result_names_its_time_version_and_instrument(emulate: str, tmp_path: Path) -> None:
    done = run_hil(
        "train", "-q", "--resource", emulate, "--max-epochs", "2", "--json", "run.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    r = json.loads((tmp_path / "run.json").read_text())
    assert r["schema_version"] == 3 and r["package_version"] == crossbar_hil.__version__
    assert r["started_at"] < r["ended_at"] and r["ended_at"].endswith("+00:00")
    instrument = r["instrument"]
    assert instrument["identity"].startswith("crossbar-hil,EmulatedCrossbar")
    assert (instrument["rows"], instrument["cols"]) == (4, 4)
    assert instrument["limits"]["pulse_v_max"] == 2.5 and instrument["supports_reset"] is True
    assert r["config"]["backend"]["name"] == "visa"  # inferred from --resource
    assert "results: run.json, run.csv" in done.stdout


def test_progress_and_summary_count_the_same_patterns(tmp_path: Path) -> None:
    done = run_hil("train", "--builtin", "--beta", "2e7", "--max-epochs", "4", cwd=tmp_path)
    assert done.returncode == 0
    last = done.stderr.strip().splitlines()[-1]
    progress = re.search(r"patterns in band (\d+)/(\d+)", last)
    summary = re.search(r"^train: .* (\d+)/(\d+) patterns in band", done.stdout, re.M)
    assert progress and summary and progress.groups() == summary.groups()


def test_a_run_that_does_not_converge_says_what_to_try(tmp_path: Path) -> None:
    done = run_hil("train", "--builtin", "-q", "--preset", "reference", "--max-epochs", "100", cwd=tmp_path)
    assert "NOT converged" in done.stdout
    tips = done.stdout.split("to try:\n", 1)[1]
    assert "--beta 1.8e+07" in tips and "--seed" in tips


def test_version_and_python_m_entry(tmp_path: Path) -> None:
    done = run_hil("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"hil (crossbar-hil) {crossbar_hil.__version__}"
    assert crossbar_hil.__version__ != "0+unknown"


def test_verbose_after_the_subcommand_and_library_internals_only_in_the_log_file(tmp_path: Path) -> None:
    args = ("train", "-q", "--builtin", "--max-epochs", "1", "--plots", "p", "-v", "--log-file", "hil.log")
    done = run_hil(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "hil.log").read_text()
    assert "DEBUG matplotlib" in log  # the libraries' internals go to the file...
    assert "matplotlib" not in done.stderr  # ...not to the screen


def test_help_shows_defaults_and_the_backend_parameters(tmp_path: Path) -> None:
    text = " ".join(run_hil("train", "--help", cwd=tmp_path).stdout.split())  # However it wraps.
    defaults = TrainingConfig()
    for value in (defaults.beta, defaults.max_epochs, defaults.patience):
        assert f"(default {value:g})" in text
    assert "backend parameters (--param KEY=VALUE):" in text
    assert "visa: timeout_s=2.0" in text and "resource (required)" in text
    assert "emulator: rows=4" in text

"""``hil experiment`` stopped by Ctrl-C keeps the trainings that finished, and says where."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.system


def rows_in(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def ignore_ctrl_c() -> None:
    """What a shell does to a background job: SIGINT ignored in the process it starts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("signum", "started_as"),
    [
        (signal.SIGINT, "a foreground job"),
        (signal.SIGINT, "a background job (SIGINT ignored)"),
        (signal.SIGTERM, "a foreground job"),
    ],
)
def test_ctrl_c_keeps_every_finished_training_and_says_how_many(
    tmp_path: Path, signum: signal.Signals, started_as: str
) -> None:
    argv = [sys.executable, "-m", "crossbar_hil.api", "experiment", "lim", "--sections", "nonlinearity"]
    argv += ["--seeds", "200", "--hidden", "4", "--train-samples", "30", "--workers", "2", "--no-plots"]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    partial = tmp_path / "lim_runs.partial.csv"
    proc = subprocess.Popen(
        [*argv, "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=ignore_ctrl_c if "background" in started_as else None,
    )
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a speed claim
        while rows_in(partial) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the study ended before it could be stopped"
        assert rows_in(partial) >= 3
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 4, err
    kept = rows_in(partial)
    assert f"stopped: {kept} of 3200 trainings kept in {partial}" in err
    assert "Traceback" not in err
    with partial.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(r["section"] == "nonlinearity" and float(r["accuracy"]) >= 0 for r in rows)
    assert not (tmp_path / "lim.csv").exists() and not (tmp_path / "lim_runs.csv").exists()


def test_a_completed_study_leaves_no_partial_file(tmp_path: Path) -> None:
    from crossbar_hil.api.cli import main

    argv = ["experiment", "lim", "--sections", "software", "--seeds", "2", "--hidden", "4"]
    assert main([*argv, "--train-samples", "30", "--workers", "1", "--no-plots", "--out", str(tmp_path)]) == 0
    assert rows_in(tmp_path / "lim_runs.csv") == 2
    assert not (tmp_path / "lim_runs.partial.csv").exists()

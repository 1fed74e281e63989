"""A damaged run store is refused at start, in one line, by the service and by hil runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crossbar_hil.api.cli import main
from crossbar_hil.runs.store import RunStore, StoreError
from crossbar_hil.training.config import RunConfig

PAGE = 4096


def damaged_store(path: Path) -> Path:
    """A store with runs in it, then a table page overwritten (as by a bad disk or a stray write)."""
    store = RunStore(path)
    for _ in range(60):
        store.create_run(RunConfig())
    store.close()  # The last connection checkpoints the log into the file.
    data = bytearray(path.read_bytes())
    assert len(data) >= 6 * PAGE
    data[3 * PAGE : 5 * PAGE] = b"\xa5" * (2 * PAGE)
    path.write_bytes(bytes(data))
    return path


def test_a_sound_store_passes_and_a_damaged_one_is_refused_in_one_line(tmp_path: Path) -> None:
    sound = RunStore(tmp_path / "sound.sqlite3")
    sound.create_run(RunConfig())
    sound.check_integrity()
    sound.close()
    path = damaged_store(tmp_path / "runs.sqlite3")
    with pytest.raises(StoreError, match=r"damaged|cannot be read") as caught:
        RunStore(path).check_integrity()
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_hil_runs_refuses_a_damaged_store_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = damaged_store(tmp_path / "runs.sqlite3")
    assert main(["runs", "--database", str(path), "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert (len(err.splitlines()) == 1 and "damaged" in err) or "cannot be read" in err


@pytest.mark.system
def test_hil_serve_refuses_a_damaged_store_in_one_line(tmp_path: Path) -> None:
    path = damaged_store(tmp_path / "runs.sqlite3")
    done = subprocess.run(
        [sys.executable, "-m", "crossbar_hil.api", "serve", "--port", "0", "--database", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HIL_TOKEN": "test-token-0123456789abcdef", "PATH": ""},
    )
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if "damaged" in line or "cannot be read" in line]

"""Output paths are judged before a run starts, and results are written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossbar_hil.procedures.outputs import (
    OutputPathError,
    check_output_dir,
    check_output_file,
    write_text_atomic,
)


def test_a_file_target_must_be_a_file_in_an_existing_writable_directory(tmp_path: Path) -> None:
    assert check_output_file(tmp_path / "run.json", "--json") == tmp_path / "run.json"
    with pytest.raises(OutputPathError, match="is a directory; give a file name"):
        check_output_file(tmp_path, "--json")
    with pytest.raises(OutputPathError, match=f"directory {tmp_path / 'no'} does not exist"):
        check_output_file(tmp_path / "no" / "run.json", "--json")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root may write anywhere
        with pytest.raises(OutputPathError, match="not writable"):
            check_output_file(locked / "run.json", "--json")


def test_a_directory_target_may_be_created_but_not_be_a_file(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "new" / "plots", "--plots") == tmp_path / "new" / "plots"
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="exists and is not a directory"):
        check_output_dir(tmp_path / "f", "--plots")
    with pytest.raises(OutputPathError, match="is not a directory"):
        check_output_dir(tmp_path / "f" / "plots", "--plots")


def test_an_atomic_write_leaves_the_old_file_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.json"
    write_text_atomic(path, "old")
    assert path.read_text() == "old" and oct(path.stat().st_mode & 0o777) == "0o644"

    def broken_replace(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # e.g. Ctrl-C at the worst moment

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left

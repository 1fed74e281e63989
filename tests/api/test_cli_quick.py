"""A quick CLI: ``hil --version`` and ``hil <cmd> --help`` load nothing heavy (read from -X importtime)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crossbar_hil import __version__
from crossbar_hil.api.cli import SUBCOMMANDS

pytestmark = pytest.mark.system

HEAVY = ("matplotlib", "scipy", "fastapi", "uvicorn", "pyvisa", "serial", "sklearn", "distributed")


def _imported(*argv: str) -> tuple[str, set[str]]:
    """What ``python -m crossbar_hil.api ARGV`` printed, and the top-level modules it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "crossbar_hil.api", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "crossbar_hil" in names  # The importtime report was read.
    return done.stdout, names


def test_version_imports_neither_numpy_nor_anything_heavy() -> None:
    out, names = _imported("--version")
    assert out.strip() == f"hil (crossbar-hil) {__version__}"
    assert names.isdisjoint((*HEAVY, "numpy", "pydantic"))


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_a_commands_help_imports_nothing_heavy(command: str) -> None:
    out, names = _imported(command, "--help")
    assert f"usage: hil {command}" in out
    assert names.isdisjoint(HEAVY), sorted(names & set(HEAVY))

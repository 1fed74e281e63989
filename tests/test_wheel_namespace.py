"""The built wheel installs one import name: beside a package that ships a top-level ``api``
module (a common name), both stay importable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_beside_another_packages_top_level_api(tmp_path: Path) -> None:
    dist, site = tmp_path / "dist", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", dist, ROOT], check=True)
    (wheel,) = dist.glob("crossbar_hil-*.whl")
    # An unrelated distribution with a top-level `api` package, installed into the same place.
    other = tmp_path / "other"
    (other / "api").mkdir(parents=True)
    (other / "api" / "__init__.py").write_text("WHO = 'the other package'\n")
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "other-api"\nversion = "1.0"\n[tool.setuptools]\npackages = ["api"]\n'
    )
    subprocess.run([*pip, "install", "--no-deps", "--target", site, other], check=True)
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    top_level = {
        p.name
        for p in site.iterdir()
        if p.name != "bin" and not p.name.endswith((".dist-info", "__pycache__"))
    }
    assert top_level == {"api", "crossbar_hil"}
    check = (
        "import api, crossbar_hil, crossbar_hil.api.cli, crossbar_hil.emulator.crossbar; "
        "print(api.WHO); print(crossbar_hil.__file__); print(crossbar_hil.api.cli.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    who, core, cli = done.stdout.splitlines()
    assert who == "the other package"
    assert Path(core).is_relative_to(site) and Path(cli).is_relative_to(site)

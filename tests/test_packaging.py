"""Packaging: every package ships, the project's data ships as ``crossbar_hil.data``, the CI script
stands on its own, and every configuration model refuses inf and NaN."""

from __future__ import annotations

import inspect
import os
import subprocess
import tomllib
from importlib import import_module
from importlib.resources import files
from pathlib import Path

import pytest
from pydantic import BaseModel

import crossbar_hil

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = PYPROJECT["tool"]["setuptools"]["packages"]
PACKAGE_DIR = PYPROJECT["tool"]["setuptools"]["package-dir"]
PACKAGE_OF_FOLDER = {folder: package for package, folder in PACKAGE_DIR.items()}


def _directory(package: str) -> Path:
    """The folder of a package, by the longest package-dir mapping that covers it."""
    parts = package.split(".")
    for n in range(len(parts), 0, -1):
        mapped = PACKAGE_DIR.get(".".join(parts[:n]))
        if mapped is not None:
            return ROOT / mapped / Path(*parts[n:])
    return ROOT / Path(*parts)


def test_the_package_list_is_the_tree() -> None:
    found = {
        ".".join([PACKAGE_OF_FOLDER[top], *p.parent.relative_to(ROOT / top).parts])
        for top in ("hil", "drivers", "emulator", "api")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert set(PACKAGES) == found | {"crossbar_hil.data"}
    assert all((_directory(p) / "__init__.py").is_file() for p in PACKAGES)


def test_one_namespace_no_generic_top_level_name() -> None:
    """Every installed package lives under crossbar_hil: nothing claims `api`, `hil`, ..."""
    assert {p.split(".")[0] for p in PACKAGES} == {"crossbar_hil"}


def test_the_reference_task_and_the_built_in_device_are_package_data() -> None:
    data = files("crossbar_hil.data")
    for name in ("tasks/reference_4bit.json", "devices/default_device.json"):
        assert data.joinpath(*name.split("/")).is_file()
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["crossbar_hil.data"]
    shipped = {str(p.relative_to(ROOT / "data")) for g in globs for p in (ROOT / "data").glob(g)}
    assert {"tasks/reference_4bit.json", "devices/default_device.json"} <= shipped


def test_every_file_of_the_web_page_is_package_data() -> None:
    """The page served at / comes from the installed package: a file the globs miss is not in a wheel."""
    static = ROOT / "api" / "service" / "static"
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["crossbar_hil.api.service"]
    shipped = {p for g in globs for p in (ROOT / "api" / "service").glob(g)}
    files_ = {p for p in static.iterdir() if p.is_file()}
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in files_}
    assert files_ <= shipped, sorted(str(p.name) for p in files_ - shipped)


def test_the_version_is_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert crossbar_hil.__version__ == version("crossbar-hil") == PYPROJECT["project"]["version"]


# Distribution name -> the module the code imports; None: used without an import statement.
# pyvisa-py: PyVISA's '@py' library; httptools, uvloop: uvicorn's HTTP parser and event loop.
IMPORT_NAMES = {"pyserial": "serial", "pyvisa-py": None, "httptools": None, "uvloop": None}


def test_every_runtime_dependency_is_imported_somewhere() -> None:
    import re

    source = "\n".join(
        p.read_text() for top in ("hil", "drivers", "emulator", "api") for p in (ROOT / top).rglob("*.py")
    )
    for requirement in PYPROJECT["project"]["dependencies"]:
        dist = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]
        module = IMPORT_NAMES.get(dist, dist.replace("-", "_"))
        if module is not None:
            assert re.search(rf"^\s*(import|from) {module}\b", source, re.M), f"{dist} is never imported"


def _models() -> list[type[BaseModel]]:
    out = []
    for top in ("hil", "drivers", "emulator"):
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT / top).with_suffix("").parts
            name = ".".join([PACKAGE_OF_FOLDER[top], *parts]).removesuffix(".__init__")
            for _, obj in inspect.getmembers(import_module(name), inspect.isclass):
                if issubclass(obj, BaseModel) and obj.__module__ == name:
                    out.append(obj)
    return out


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m.__module__}.{m.__name__}")
def test_every_configuration_model_refuses_inf_and_nan(model: type[BaseModel]) -> None:
    assert model.model_config.get("allow_inf_nan") is False


def test_ci_without_the_shared_folder_says_so_itself(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".ci").mkdir(parents=True)
    script = tmp_path / "repo" / ".ci" / "run"
    script.write_text((ROOT / ".ci" / "run").read_text())
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"CI: {tmp_path / 'repo'}/../shared not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # nothing left behind

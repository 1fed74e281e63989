"""The layers and their arrows (ARCHITECTURE.md section 2), read from the import statements.

The core (``hil/``, installed as ``crossbar_hil``) imports nothing from the edges; the drivers
and the emulator do not import each other. Checked on the source, so an import inside a
function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EDGES = ("crossbar_hil.drivers", "crossbar_hil.emulator", "crossbar_hil.api")


def _imports(folder: str) -> dict[str, set[str]]:
    """Module file -> the absolute module names it imports."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / folder).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def _offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path}: {name}"
        for path, names in _imports(folder).items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def test_the_core_imports_no_edge() -> None:
    assert any(n.startswith("crossbar_hil.") for names in _imports("hil").values() for n in names)
    assert _offending("hil", EDGES) == []


@pytest.mark.parametrize(("folder", "other"), [("drivers", "emulator"), ("emulator", "drivers")])
def test_drivers_and_emulator_do_not_import_each_other(folder: str, other: str) -> None:
    assert _offending(folder, (f"crossbar_hil.{other}",)) == []


@pytest.mark.parametrize("folder", ["hil", "drivers", "emulator", "api"])
def test_no_module_imports_the_old_top_level_names(folder: str) -> None:
    """``api``, ``hil``, ``drivers`` and ``emulator`` are not import names: one namespace."""
    assert _offending(folder, ("api", "hil", "drivers", "emulator")) == []

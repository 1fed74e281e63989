"""The codec in its four sections: declarations, number grammar, client side, instrument side."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import crossbar_hil.protocol.codec as codec

SECTIONS = ("commands", "grammar", "client", "instrument")


def _imported(section: str) -> set[str]:
    path = Path(codec.__file__).with_name(f"{section}.py")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("section", SECTIONS)
def test_the_facade_gives_every_public_name_of_each_section(section: str) -> None:
    module = importlib.import_module(f"crossbar_hil.protocol.{section}")
    assert module.__all__
    for name in module.__all__:
        assert getattr(codec, name) is getattr(module, name)


def test_each_side_of_the_line_leans_only_on_the_declarations_and_the_grammar() -> None:
    assert not any("instrument" in n for n in _imported("client"))
    assert not any("client" in n for n in _imported("instrument"))
    assert not any(n.startswith("crossbar_hil.protocol") for n in _imported("commands"))

"""Every error class the project defines is a :class:`HilError`, so a lab script can catch them all."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import crossbar_hil
from crossbar_hil.seam.errors import HilError


def _project_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(crossbar_hil.__path__, "crossbar_hil.")]


def test_every_project_error_is_a_hil_error() -> None:
    outside = []
    found = 0
    for name in _project_modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                found += 1
                if not issubclass(cls, HilError):
                    outside.append(f"{name}.{cls_name}")
    assert found >= 20  # The scan sees the project's errors (the seam's, the runs', the service's).
    assert outside == []

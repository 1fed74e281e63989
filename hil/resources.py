"""Where the project's own data lives, and where the user's trace is.

The one place that knows: the top-level ``data/`` folder of the checkout (the
reference task, the fitted built-in device) is installed as the package
``crossbar_hil.data`` (``pyproject.toml`` maps it with ``package-dir``), so an editable
install reads the checkout's files and a wheel carries them. Both are read with
:mod:`importlib.resources`. The third-party reference trace is never shipped:
its path comes from an option or the ``HIL_TRACE`` environment variable.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

TRACE_ENV = "HIL_TRACE"
"""Environment variable holding the path of a conductance trace to replay."""

DATA_PACKAGE = "crossbar_hil.data"
"""The package that holds ``data/``."""


def read_data_text(relative: str) -> str:
    """Text of a file under the project's ``data/`` (e.g. ``tasks/reference_4bit.json``).

    Raises FileNotFoundError naming the file when the installation lacks it.
    """
    resource = files(DATA_PACKAGE).joinpath(*relative.split("/"))
    if not resource.is_file():
        raise FileNotFoundError(
            f"project data file {relative!r} is missing from this installation of crossbar-hil "
            f"(package {DATA_PACKAGE}): reinstall it (`pip install .` or `pip install -e .` in a checkout)"
        )
    return resource.read_text(encoding="utf-8")


def trace_from_env() -> Path | None:
    """The trace path named by ``HIL_TRACE``, or None when the variable is unset or empty."""
    value = os.environ.get(TRACE_ENV, "").strip()
    return Path(value).expanduser() if value else None

"""Where the project's own data lives, and where the user's trace is.

``data/`` (the reference task, default configs, the fitted default device) sits
at the top of the project; an editable install (``pip install -e .``) keeps it
there. The third-party reference trace is never shipped: its path comes from an
option or the ``HIL_TRACE`` environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

TRACE_ENV = "HIL_TRACE"
"""Environment variable holding the path of a conductance trace to replay."""

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def data_path(relative: str) -> Path:
    """Path of a file under the project's ``data/`` directory; a clear error if missing."""
    path = DATA_DIR / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"project data file {relative!r} not found under {DATA_DIR}: "
            "install crossbar-hil from a checkout with `pip install -e .`"
        )
    return path


def trace_from_env() -> Path | None:
    """The trace path named by ``HIL_TRACE``, or None when the variable is unset or empty."""
    value = os.environ.get(TRACE_ENV, "").strip()
    return Path(value).expanduser() if value else None

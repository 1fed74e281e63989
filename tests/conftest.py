"""Shared fixtures. The reference trace is third-party: it is found through HIL_TRACE."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hil.resources import TRACE_ENV, trace_from_env


@pytest.fixture(scope="session")
def reference_trace_path() -> Path:
    """Path of SP291D1NR100.dat. Skips with the reason off CI; fails under CI=true."""
    path = trace_from_env()
    if path is not None and path.is_file():
        return path
    why = (
        f"reference trace SP291D1NR100.dat not available: set {TRACE_ENV} to its path "
        f"(currently {os.environ.get(TRACE_ENV)!r}); it is third-party data and not shipped"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"under CI the trace is required: {why}")
    pytest.skip(why)

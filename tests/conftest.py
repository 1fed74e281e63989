"""Shared fixtures. The reference trace is third-party: it is found through HIL_TRACE."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbar_hil.resources import TRACE_ENV, trace_from_env
from crossbar_hil.runs.store import STORE_ENV


@pytest.fixture(autouse=True)
def _own_run_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test its own run store (``$HIL_DB``, created only when used): ``hil train`` records its
    runs there, never in the user's ``~/.crossbar-hil``, and no test sees another's runs or
    calibrations. Subprocesses inherit it."""
    path = tmp_path_factory.mktemp("store") / "runs.sqlite3"
    monkeypatch.setenv(STORE_ENV, str(path))
    return path


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


@pytest.fixture
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Dask cluster on 127.0.0.1 (scratch space in a temporary directory); its address."""
    distributed = pytest.importorskip("distributed", reason="the Dask path needs the 'sweep' extra")
    import dask

    logging.getLogger("distributed").setLevel(logging.ERROR)
    scratch = str(tmp_path_factory.mktemp("dask"))
    with (
        dask.config.set({"temporary-directory": scratch}),
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=None,
            local_directory=scratch,
        ) as cluster,
    ):
        yield cluster.scheduler_address

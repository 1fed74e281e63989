"""Fixtures of the service tests: settings with a token, a client of a live service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_support import TOKEN, live_service

from crossbar_hil.api.service.settings import ServiceSettings


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(database=tmp_path / "runs.sqlite3", token=TOKEN, max_emulator_runs=4)


@pytest.fixture
def service(settings: ServiceSettings) -> Iterator[httpx.Client]:
    """An HTTP client of a live service."""
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=20) as client:
        yield client

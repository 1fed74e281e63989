"""Records declared once: the service answers with the core's types for an epoch record, a run, a
pulse-log entry and an instrument listing, not with copies of their fields (issue 17 item 5)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from crossbar_hil.api.service import models
from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.models import RunView
from crossbar_hil.api.service.routers.runs import router as runs_router
from crossbar_hil.api.service.routers.system import router as system_router
from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.drivers.discovery import Discovery, Found
from crossbar_hil.runs.store import LoggedPulse, PulseLogEntry, Run
from crossbar_hil.training.history import EpochRecord

CORE_RECORDS: list[type[Any]] = [EpochRecord, Run, PulseLogEntry, Found]
"""The records the core declares and the service answers with."""


def field_names(cls: type[Any]) -> set[str]:
    """The names a record is written out with (fields and computed fields)."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return set(cls.model_fields) | set(cls.model_computed_fields)
    return {f.name for f in dataclasses.fields(cls)} | set(cls.__pydantic_decorators__.computed_fields)


def response_model(path: str) -> Any:
    """The response model of the service's GET route at ``path``."""
    routes = [*runs_router.routes, *system_router.routes]
    (route,) = [r for r in routes if isinstance(r, APIRoute) and r.path == path and "GET" in r.methods]
    return route.response_model


@pytest.mark.parametrize(
    ("path", "item"),
    [("/runs/{run_id}/epochs", EpochRecord), ("/runs/{run_id}/pulses", LoggedPulse), ("/runs", RunView)],
)
def test_a_page_of_records_holds_the_core_type(path: str, item: type) -> None:
    page = response_model(path)
    assert page.model_fields["items"].annotation == list[item]


def test_a_run_is_the_stores_run_with_links_and_declares_none_of_its_fields() -> None:
    assert response_model("/runs/{run_id}") is RunView
    assert issubclass(RunView, Run) and issubclass(LoggedPulse, PulseLogEntry)
    assert not set(vars(RunView).get("__annotations__", {})) & set(Run.model_fields)  # Nothing re-listed.
    assert field_names(RunView) == field_names(Run) | {"links"}


def test_the_instrument_listing_is_the_drivers_discovery() -> None:
    assert response_model("/instruments") is Discovery


def test_the_service_models_copy_no_core_record() -> None:
    """A model of the service sharing three or more field names with a core record, without deriving
    from it, is a twin of it (the old EpochView, PulseLogItem, InstrumentView, RunView.of)."""
    for name, cls in inspect.getmembers(models, inspect.isclass):
        if cls.__module__ != models.__name__ or not issubclass(cls, BaseModel):
            continue
        for core in CORE_RECORDS:
            shared = field_names(cls) & field_names(core)
            assert issubclass(cls, core) or len(shared) < 3, f"{name} re-declares {core.__name__}: {shared}"


def test_the_run_written_out_keeps_the_apis_names_and_hides_the_stores_own(settings: ServiceSettings) -> None:
    schema = create_app(settings).openapi()["components"]["schemas"]["RunView"]["properties"]
    assert "last_event_id" in schema and "links" in schema
    assert not {"last_event", "idempotency_key", "request_hash", "owner"} & set(schema)

"""Pydantic models of the service's request and response bodies.

A run is requested as a :class:`RunRequest`: a :class:`~crossbar_hil.training.config.RunConfig`
and what to do when its instrument is busy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field

from crossbar_hil.runs.manager import IfBusy
from crossbar_hil.runs.store import LoggedPulse, OnFailure, PauseWhen, QueueState, Run
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.history import EpochRecord


class RunRequest(RunConfig):
    """A run to start: its config, and what to do when its instrument is busy."""

    if_busy: IfBusy = Field(
        "refuse",
        description="When the instrument is busy (or runs wait for it): 'refuse' (409, or 429 for the "
        "emulator's limit) or 'queue' (the run waits in the instrument's queue, status 'queued' with "
        "a queue_position, and starts when its turn comes and the queue is started).",
    )
    on_failure: OnFailure = Field(
        "stop", description="When this run fails: 'stop' its queue (the default) or 'continue' with the next."
    )

    def config(self) -> RunConfig:
        """The run's config alone."""
        return RunConfig.model_validate(self.model_dump(include=set(RunConfig.model_fields)))


class PauseRequest(BaseModel):
    """When a pause takes effect."""

    model_config = ConfigDict(extra="forbid")

    when: PauseWhen = Field(
        "after_epoch",
        description="'after_epoch': once the epoch in flight is recorded; 'now': before the next "
        "operation sent to the instrument (the operation in flight completes).",
    )


class RunView(Run):
    """A run (the store's :class:`~crossbar_hil.runs.store.Run`, declared there) and the links to
    what it has."""

    @computed_field(description="URLs of the run's records and actions.")  # type: ignore[prop-decorator]
    @property
    def links(self) -> dict[str, str]:
        """The run's URLs: itself, its events, epochs, pulses, result, CSV, plots and its actions."""
        base = f"/runs/{self.id}"
        return {"self": base, **{name: f"{base}/{path}" for name, path in RUN_LINKS.items()}}

    @classmethod
    def of(cls, run: Run) -> RunView:
        """``run`` with its links (no copy of its fields: the same values, not validated again)."""
        return cls.model_construct(run.model_fields_set, **dict(run))


RUN_LINKS = {
    name: name.replace("history_csv", "history.csv")
    for name in ("events", "epochs", "pulses", "result", "history_csv", "plots", "stop", "pause", "resume")
}
"""The links of a run besides ``self``: name -> its path under ``/runs/{id}/``."""


class Page(BaseModel):
    """Where a page sits in the whole list."""

    total: int
    offset: int
    limit: int


class RunPage(Page):
    items: list[RunView]


class EpochPage(Page):
    items: list[EpochRecord]


class PulsePage(Page):
    items: list[LoggedPulse]


class QueueView(BaseModel):
    """One instrument's queue: whether it starts its next run, and the runs waiting, in order."""

    name: str = Field(
        description="The queue: its instrument's device key (tcp:<address>:<port>, serial:<path>, "
        "visa:<resource>), or 'emulator'. Requests name it in any spelling of the instrument."
    )
    state: QueueState = Field(
        description="'started': the next run starts when the instrument is free; 'stopped': none starts."
    )
    reason: str | None = Field(None, description="Why it stopped (a failed run, a restart, a request).")
    items: list[RunView] = Field(description="Runs waiting, the next first (queue_position 1, 2, ...).")


class QueuesView(BaseModel):
    queues: list[QueueView]


class QueueAction(BaseModel):
    """Which queue to start or stop."""

    model_config = ConfigDict(extra="forbid")

    instrument: str = Field(
        max_length=500,
        description="The queue: its instrument in any spelling (a resource, a port) or its name from "
        "GET /queue, or 'emulator'.",
    )


class QueueMove(BaseModel):
    """Where to put a waiting run in its queue."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(max_length=64)
    position: int = Field(ge=1, le=100000, description="1 = next to start.")


class PlotList(BaseModel):
    plots: dict[str, str] = Field(description="Figure name -> URL of its PNG.")


class EmergencyStopRequest(BaseModel):
    reason: str = Field("emergency stop", max_length=500)


class EmergencyStopState(BaseModel):
    latched: bool
    since: str | None = None
    reason: str | None = None
    stopped_runs: list[str] = Field(default_factory=list, description="Runs this request stopped.")


class BackendsView(BaseModel):
    backends: dict[str, str] = Field(description="Registered name -> what it points at.")


class Health(BaseModel):
    status: str
    active_runs: int
    emergency_stop_latched: bool
    database: str
    store_schema_version: int


class VersionView(BaseModel):
    version: str = Field(description="crossbar-hil package version.")
    result_schema_version: int
    store_schema_version: int

"""Pydantic models of the service's request and response bodies.

A run is requested as a :class:`RunRequest`: a :class:`~crossbar_hil.training.config.RunConfig`
and what to do when its instrument is busy.
"""

from __future__ import annotations

from typing import Any

from crossbar_hil.runs.manager import IfBusy
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import OnFailure, PauseWhen, QueueState, Run
from crossbar_hil.training.config import RunConfig
from pydantic import BaseModel, ConfigDict, Field


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


class RunView(BaseModel):
    """A run: what it was asked, where it is, how it ended."""

    id: str
    status: RunStatus
    created_at: str = Field(description="UTC, ISO 8601.")
    started_at: str | None = None
    ended_at: str | None = None
    backend: str = Field(description="Registered backend name.")
    instrument: str | None = Field(None, description="Instrument held (resource or port); None = emulator.")
    identity: str | None = Field(None, description="The instrument's identity (e.g. *IDN? reply).")
    outcome: str | None = Field(None, description="converged, max_epochs, stopped or fault, once ended.")
    error: str | None = Field(None, description="Why it failed or was interrupted.")
    epochs: int = Field(
        description="Epochs trained so far: the number of the last epoch record (epoch 0, the read before "
        "training, trains nothing), as hil train counts them; /runs/{id}/epochs has one record more."
    )
    pulses: int = Field(description="Programming pulses sent so far.")
    last_event_id: int = Field(description="Id of its latest event (see /runs/{id}/events).")
    pause_request: PauseWhen | None = Field(None, description="A pause asked for and not yet resumed.")
    queue: str | None = Field(None, description="Its queue: its instrument, or 'emulator'.")
    queue_position: int | None = Field(None, description="1 = next to start, while it waits in its queue.")
    on_failure: OnFailure = Field("stop", description="What its queue does if it fails.")
    config: dict[str, Any] = Field(description="The run's RunConfig.")
    links: dict[str, str]

    @classmethod
    def of(cls, run: Run) -> RunView:
        base = f"/runs/{run.id}"
        return cls(
            id=run.id,
            status=run.status,
            created_at=run.created_at,
            started_at=run.started_at,
            ended_at=run.ended_at,
            backend=run.backend,
            instrument=run.instrument,
            identity=run.identity,
            outcome=run.outcome,
            error=run.error,
            epochs=run.epochs,
            pulses=run.pulses,
            last_event_id=run.last_event,
            pause_request=run.pause_request,
            queue=run.queue,
            queue_position=run.queue_position,
            on_failure=run.on_failure,
            config=run.config,
            links={
                "self": base,
                "events": f"{base}/events",
                "epochs": f"{base}/epochs",
                "pulses": f"{base}/pulses",
                "result": f"{base}/result",
                "history_csv": f"{base}/history.csv",
                "plots": f"{base}/plots",
                "stop": f"{base}/stop",
                "pause": f"{base}/pause",
                "resume": f"{base}/resume",
            },
        )


class Page(BaseModel):
    """Where a page sits in the whole list."""

    total: int
    offset: int
    limit: int


class RunPage(Page):
    items: list[RunView]


class EpochView(BaseModel):
    """One epoch record (the form of ``hil train --json`` history entries)."""

    epoch: int
    conductances_siemens: list[list[float]]
    weights_siemens: list[list[float]]
    currents_a: list[list[float]]
    activations: list[list[float]]
    in_band: list[list[bool]]
    error: float
    misses: int
    converged: bool
    pulses: int
    resets: int = 0
    reset_devices: list[list[int]] = Field(default_factory=list, description="(row, col) of each reset.")
    verify_pulses: int = 0
    reads: int = 0
    instrument_time_s: float = 0.0

    model_config = ConfigDict(extra="allow")  # A newer record field is passed on, not dropped.


class EpochPage(Page):
    items: list[EpochView]


class PulseLogItem(BaseModel):
    """One programming operation sent to the device."""

    epoch: int = Field(description="The epoch whose record it belongs to.")
    sent_at: str
    kind: str = Field(description="'pulse' or 'reset' (the device's own reset pulse).")
    row: int
    col: int
    amplitude_v: float | None = None
    width_s: float | None = None


class PulsePage(Page):
    items: list[PulseLogItem]


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


class InstrumentView(BaseModel):
    backend: str
    address: str
    description: str = ""
    identity: str | None = None
    probe_error: str | None = None
    params: dict[str, str]


class InstrumentsView(BaseModel):
    found: list[InstrumentView]
    notes: list[str]


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

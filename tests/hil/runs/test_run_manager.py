"""The run manager: background runs recorded as they go, exclusivity, stop, emergency stop."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossbar_hil.emulator.crossbar import EmulatedCrossbar
from crossbar_hil.procedures.training import run_training
from crossbar_hil.runs.manager import (
    BackendUnavailable,
    EmergencyStopLatched,
    InstrumentBusy,
    InvalidRun,
    RunManager,
    TooManyRuns,
    instrument_key,
    queue_key,
)
from crossbar_hil.runs.status import RunStatus
from crossbar_hil.runs.store import RunStore
from crossbar_hil.seam.errors import CommunicationError
from crossbar_hil.training.config import BackendSpec, RunConfig
from crossbar_hil.training.history import TrainingResult, first_difference


class SlowCrossbar(EmulatedCrossbar):
    """The emulator, each conductance read taking ``delay_s`` (s): a run long enough to stop mid-way."""

    delay_s = 0.02

    def _read_conductances(self, read_v: float) -> Any:
        time.sleep(self.delay_s)
        return super()._read_conductances(read_v)


class Builder:
    """Builds emulators (slow ones for every backend name but 'emulator'), keeping each for inspection."""

    def __init__(self) -> None:
        self.built: list[EmulatedCrossbar] = []

    def __call__(self, name: str, params: Mapping[str, Any]) -> EmulatedCrossbar:
        if params.get("unreachable"):
            raise CommunicationError("no answer")
        rest = {k: v for k, v in params.items() if k not in ("resource", "slow")}
        cls = SlowCrossbar if params.get("slow") or name != "emulator" else EmulatedCrossbar
        self.built.append(cls.from_params(rest))
        return self.built[-1]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(tmp_path / "runs.sqlite3")
    yield s
    s.close()


@pytest.fixture
def builder() -> Builder:
    return Builder()


@pytest.fixture
def manager(store: RunStore, builder: Builder) -> Iterator[RunManager]:
    m = RunManager(
        store, max_emulator_runs=2, build_backend=builder, backend_names=lambda: ["emulator", "fake"]
    )
    yield m
    m.shutdown(10)


def config(name: str = "emulator", max_epochs: int = 50, **params: Any) -> RunConfig:
    """A run of ``max_epochs`` with the reference settings, which do not converge on the default
    emulator (no patience: it runs them all unless it converges or is stopped)."""
    return RunConfig.model_validate(
        {
            "preset": "reference",
            "backend": {"name": name, "params": params},
            "training": {"max_epochs": max_epochs, "patience": 0},
        }
    )


def without_times(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its start and end times (two runs of one config differ only there)."""
    return {k: v for k, v in result.items() if k not in ("started_at", "ended_at")}


def wait_for_epochs(store: RunStore, run_id: str, n: int, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (seen := store.get_run(run_id).epochs) < n:
        assert time.monotonic() < deadline, f"run {run_id} did not reach {n} epochs"
        time.sleep(0.005)
    return seen


def test_a_run_is_stored_as_the_procedure_runs_it(manager: RunManager, store: RunStore) -> None:
    run, new = manager.start(config(seed=4))
    assert new and run.status is RunStatus.QUEUED
    assert manager.wait(run.id, 10)
    got = store.get_run(run.id)
    direct = run_training(config(seed=4), backend=EmulatedCrossbar.from_params({"seed": 4}))
    assert got.status is RunStatus.NOT_CONVERGED and got.outcome == "max_epochs"
    stored = TrainingResult.from_dict(store.result(run.id), direct.config.training, store.epochs(run.id))
    assert first_difference(stored, direct.result) is None
    assert without_times(store.result(run.id)) == without_times(direct.to_dict(with_history=False))
    assert got.pulses == direct.result.total_pulses == store.pulse_log_count(run.id, "pulse")
    assert store.pulse_log_count(run.id, "reset") == len(direct.result.start_reset_devices)
    sent = [p.epoch for p in store.pulse_log(run.id) if p.kind == "pulse"]
    per_epoch = np.bincount(sent, minlength=got.epochs + 1)  # Epoch 0 and the epochs trained.
    assert per_epoch.tolist() == [r.pulses for r in direct.result.history]
    assert [e.data["status"] for e in store.events(run.id) if e.kind == "status"] == [
        "queued",
        "running",
        "not_converged",
    ]


def test_one_run_per_instrument_and_a_limit_on_emulator_runs(manager: RunManager, store: RunStore) -> None:
    first, _ = manager.start(config("fake", resource="TCPIP::lab::5025::SOCKET"))
    with pytest.raises(InstrumentBusy, match=f"'TCPIP::lab::5025::SOCKET' is in use by run {first.id}"):
        manager.start(config("fake", resource="TCPIP::lab::5025::SOCKET"))
    other, _ = manager.start(config("fake", resource="TCPIP::lab2::5025::SOCKET"))
    slow = [manager.start(config(slow=True))[0] for _ in range(2)]
    with pytest.raises(TooManyRuns, match="max_emulator_runs=2"):
        manager.start(config())
    for run in (first, other, *slow):
        manager.stop(run.id)
        assert manager.wait(run.id, 10)
    again, _ = manager.start(config("fake", max_epochs=1, resource="TCPIP::lab::5025::SOCKET"))
    assert manager.wait(again.id, 10) and store.get_run(again.id).status is RunStatus.NOT_CONVERGED


def a_run_of_another_process(store: RunStore, cfg: RunConfig) -> str:
    """A running run in the store owned by another live process (as ``hil train`` records one)."""
    parent = f"{socket.gethostname()}:{os.getppid()}"
    run = store.create_run(
        cfg, instrument=instrument_key(cfg.backend), queue=queue_key(cfg.backend), owner=parent
    )
    store.transition(run.id, RunStatus.RUNNING)
    return run.id


def test_an_instrument_held_by_another_process_s_run_is_busy_and_its_queue_waits(
    manager: RunManager, store: RunStore, builder: Builder
) -> None:
    held = a_run_of_another_process(store, config("fake", resource="TCPIP::lab::5025::SOCKET"))
    with pytest.raises(InstrumentBusy, match=f"is in use by run {held}"):
        manager.start(config("fake", resource="socket://lab:5025"))  # The same instrument, spelled otherwise.
    waiting, _ = manager.start(
        config("fake", max_epochs=1, resource="TCPIP::lab::5025::SOCKET"), if_busy="queue"
    )
    assert manager.advance(str(waiting.queue)) == [] and builder.built == []  # Nothing opened.
    store.request_stop(held)
    store.transition(held, RunStatus.STOPPED)
    ended = threading.Event()  # Set when the manager records the run's end (its last event).

    def on_event(run_id: str, seq: int) -> None:
        if run_id == waiting.id and store.get_run(run_id).status.finished:
            ended.set()

    store.add_listener(on_event)
    assert manager.advance(str(waiting.queue)) == [waiting.id]
    ended.wait(600)  # 600 s: only a guard against a hang; the assertion is the status below.
    assert store.get_run(waiting.id).status is RunStatus.NOT_CONVERGED and len(builder.built) == 1


def test_a_run_holds_its_instrument_before_its_worker_opens_it(
    manager: RunManager, store: RunStore, builder: Builder
) -> None:
    """A hil train that tries to take the instrument while the run's worker opens and checks it is
    refused: the run was created (exclusive) before its worker opened anything, so nobody opens an
    instrument another run drives (issue 17 review finding 7; it used to be the other way round)."""
    wanted = config("fake", max_epochs=1, resource="TCPIP::lab::5025::SOCKET")
    refused: list[str] = []

    def build_while_taken(name: str, params: Mapping[str, Any]) -> EmulatedCrossbar:
        try:  # hil train, while the worker opens the instrument
            store.create_run(
                wanted,
                instrument=instrument_key(wanted.backend),
                queue=queue_key(wanted.backend),
                owner=f"{socket.gethostname()}:{os.getppid()}",
                exclusive=True,
            )
        except InstrumentBusy as e:
            refused.append(e.run_id)
        return builder(name, params)

    manager._build_backend = build_while_taken
    run, _ = manager.start(wanted)
    assert refused == [run.id]
    assert manager.wait(run.id, 10)
    assert [r.id for r in store.list_runs()[0]] == [run.id]
    assert store.get_run(run.id).status is RunStatus.NOT_CONVERGED


def test_a_queued_run_is_not_taken_from_its_queue_while_another_process_holds_the_instrument(
    manager: RunManager, store: RunStore
) -> None:
    """The queue takes the next run out only while the instrument is free, atomically in the store."""
    wanted = config("fake", max_epochs=1, resource="TCPIP::lab::5025::SOCKET")
    held = a_run_of_another_process(store, config("fake", resource="TCPIP::lab::5025::SOCKET"))
    store.transition(held, RunStatus.STOPPING)
    waiting = store.create_run(wanted, queue=queue_key(wanted.backend), owner=manager.owner, wait=True)
    with pytest.raises(InstrumentBusy, match=held):
        store.transition_out_of_queue(waiting.id, exclusive=True)
    assert store.get_run(waiting.id).queue_position == 1


def test_the_emergency_stop_also_stops_another_process_s_run(manager: RunManager, store: RunStore) -> None:
    held = a_run_of_another_process(store, config("fake", resource="R"))
    assert manager.emergency_stop("smoke") == [held]
    assert store.get_run(held).status is RunStatus.STOPPING  # Its process reads it within poll_s.
    assert "emergency stop: smoke" in (store.get_run(held).error or "")


def test_run_threads_leave_no_database_connection_behind(manager: RunManager, store: RunStore) -> None:
    before = len(store._all)
    for _ in range(5):
        run, _ = manager.start(config(max_epochs=1))
        assert manager.wait(run.id, 10)
    assert len(store._all) == before


def test_instrument_keys() -> None:
    assert instrument_key(BackendSpec(name="visa", params={"resource": "R"})) == "R"
    assert instrument_key(BackendSpec(name="serial", params={"port": "/dev/ttyUSB0"})) == "/dev/ttyUSB0"
    assert instrument_key(BackendSpec(name="emulator")) is None
    assert instrument_key(BackendSpec(name="lab_thing")) == "backend:lab_thing"


def test_bad_configs_are_refused_naming_the_field_and_nothing_is_stored(
    manager: RunManager, store: RunStore
) -> None:
    cases = [
        (config("nope"), "backend.name"),
        (config(rows="x"), "backend.params.rows"),
        (RunConfig.model_validate({"training": {"pulse_v": 3.0}}), "training.pulse_v"),
        (RunConfig.model_validate({"training": {"pulse_width_s": 5.0}}), "training.pulse_width_s"),
        (RunConfig.model_validate({"backend": {"params": {"rows": 2}}}), "task"),
        (RunConfig.model_validate({"training": {"rule": "method_c"}}), "training.rule"),
    ]
    for cfg, field in cases:
        with pytest.raises(InvalidRun) as caught:
            manager.start(cfg)
        assert list(caught.value.errors) == [field]
    with pytest.raises(BackendUnavailable, match="no answer"):
        manager.start(config("fake", unreachable=True))
    assert store.list_runs()[1] == 0


def test_stop_ends_the_run_within_one_epoch_at_0_v_and_is_idempotent(
    manager: RunManager, store: RunStore, builder: Builder
) -> None:
    run, _ = manager.start(config(slow=True, max_epochs=500))  # Lasts until stopped.
    wait_for_epochs(store, run.id, 3)
    assert manager.stop(run.id).status is RunStatus.STOPPING
    # Asked again: no error, nothing else written (the run may have ended already: a stop takes
    # effect before the next pulse, and a loaded machine can pause this test that long).
    assert manager.stop(run.id).status in (RunStatus.STOPPING, RunStatus.STOPPED)
    assert manager.wait(run.id, 60)  # A guard against a hang.
    got = store.get_run(run.id)
    assert got.status is RunStatus.STOPPED and got.outcome == "stopped"
    events = store.events(run.id, 0, 100_000)  # In commit order: what came after the stop was written.
    stopped = [e.seq for e in events if e.kind == "status" and e.data["status"] == "stopping"]
    assert len(stopped) == 1  # The second stop wrote nothing.
    assert sum(1 for e in events if e.kind == "epoch" and e.seq > stopped[0]) <= 1
    assert builder.built[-1].aborts >= 1
    assert manager.stop(run.id).status is RunStatus.STOPPED  # A finished run is left as it is.
    assert sum(r.pulses for r in store.epochs(run.id)) == store.pulse_log_count(run.id, "pulse")


def test_a_stop_written_by_another_process_is_honoured(manager: RunManager, store: RunStore) -> None:
    long = 500  # Epochs: the run cannot end on its own during the test, however slow the machine.
    run, _ = manager.start(config(slow=True, max_epochs=long))
    wait_for_epochs(store, run.id, 2)
    other = RunStore(store.path)  # As `hil runs stop` does, through the file.
    try:
        other.request_stop(run.id)
    finally:
        other.close()
    assert manager.wait(run.id, 120)  # A guard against a hang, not a speed claim.
    got = store.get_run(run.id)
    # Ended by the stop, not by its epochs: how many epochs the stop takes to be noticed depends
    # on the machine's speed (the store is polled every 0.2 s; records are committed in batches).
    assert got.status is RunStatus.STOPPED and got.outcome == "stopped" and got.epochs < long, got


def test_the_emergency_stop_stops_everything_and_latches(
    manager: RunManager, store: RunStore, builder: Builder
) -> None:
    long = 500  # Epochs: the runs cannot end on their own during the test, however slow the machine.
    runs = [
        manager.start(config(slow=True, max_epochs=long))[0],
        manager.start(config("fake", resource="R", max_epochs=long))[0],
    ]
    for run in runs:
        wait_for_epochs(store, run.id, 1)
    assert sorted(manager.emergency_stop("smoke")) == sorted(r.id for r in runs)
    for run in runs:
        assert manager.wait(run.id, 10)
        got = store.get_run(run.id)
        assert got.status is RunStatus.STOPPED and "emergency stop: smoke" in (got.error or ""), got
    assert all(b.aborts >= 1 for b in builder.built)
    with pytest.raises(EmergencyStopLatched, match="smoke"):
        manager.start(config())
    assert RunManager(store).emergency_stop_state()["reason"] == "smoke"  # Kept in the store.
    manager.clear_emergency_stop()
    run, _ = manager.start(config(max_epochs=1))
    assert manager.wait(run.id, 10)


def test_an_idempotency_key_returns_the_same_run(manager: RunManager, store: RunStore) -> None:
    first, new = manager.start(config(max_epochs=1), idempotency_key="k1", request_hash="h")
    again, new_again = manager.start(config(max_epochs=1), idempotency_key="k1", request_hash="h")
    assert new and not new_again and again.id == first.id
    with pytest.raises(InvalidRun, match="Idempotency-Key"):
        manager.start(config(max_epochs=2), idempotency_key="k1", request_hash="other")
    assert store.list_runs()[1] == 1


@pytest.mark.parametrize("rule", ["method_a", "method_b", "method_c"])
def test_the_pulse_log_holds_every_pulse_and_reset_the_rule_sent(
    manager: RunManager, store: RunStore, rule: str
) -> None:
    params = {"depression": True} if rule == "method_c" else {}
    cfg = RunConfig.model_validate(
        {"backend": {"params": params}, "training": {"rule": rule, "max_epochs": 30, "patience": 0}}
    )
    run, _ = manager.start(cfg)
    assert manager.wait(run.id, 30)
    history = store.epochs(run.id)
    log = store.pulse_log(run.id)
    start = [tuple(d) for d in store.result(run.id)["start_reset_devices"]]  # Reset before epoch 0.
    probes = store.result(run.id)["probe_pulses"]  # Sent before epoch 0 to learn the device curves.
    for record in history:
        sent = [e for e in log if e.epoch == record.epoch]
        resets = [(e.row, e.col) for e in sent if e.kind == "reset"]
        assert resets == (start if record.epoch == 0 else []) + [tuple(d) for d in record.reset_devices]
        assert sum(e.kind == "pulse" for e in sent) == record.pulses + (probes if record.epoch == 0 else 0)
    assert store.get_run(run.id).pulses == sum(r.pulses for r in history)
    direct = run_training(cfg, backend=EmulatedCrossbar.from_params(params))
    stored = TrainingResult.from_dict(store.result(run.id), cfg.training, history)
    assert first_difference(stored, direct.result) is None


def test_a_run_in_its_own_process_is_the_same_run(store: RunStore) -> None:
    manager = RunManager(store, isolation="process")
    try:
        run, _ = manager.start(config(seed=3, max_epochs=20))
        assert manager.wait(run.id, 60)
        assert manager.active_runs() == []
        direct = run_training(
            config(seed=3, max_epochs=20), backend=EmulatedCrossbar.from_params({"seed": 3})
        )
        stored = TrainingResult.from_dict(store.result(run.id), direct.config.training, store.epochs(run.id))
        assert first_difference(stored, direct.result) is None
        assert store.pulse_log_count(run.id, "pulse") == direct.result.total_pulses
        assert store.last_event(run.id) == store.get_run(run.id).last_event  # Relayed as committed.
    finally:
        manager.shutdown(10)
    with pytest.raises(ValueError, match="through the registry"):
        RunManager(store, isolation="process", build_backend=Builder())


def test_a_start_waiting_on_dns_does_not_delay_the_emergency_stop(
    manager: RunManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import threading

    asked, answer = threading.Event(), threading.Event()

    def slow_dns(*args: Any, **kwargs: Any) -> Any:
        asked.set()
        assert answer.wait(30)
        raise socket.gaierror("no such host")

    monkeypatch.setattr(socket, "getaddrinfo", slow_dns)
    refused: list[BaseException] = []

    def start() -> None:
        try:
            manager.start(config("fake", max_epochs=1, resource="TCPIP::bench-7.invalid::5025::SOCKET"))
        except Exception as e:
            refused.append(e)

    starting = threading.Thread(target=start)
    starting.start()
    assert asked.wait(10)
    estop = threading.Thread(target=manager.emergency_stop, args=("test",))
    estop.start()
    estop.join(10)  # Fails only when it waits for the DNS answer (released after 30 s).
    done_before_dns = not estop.is_alive()
    answer.set()
    estop.join()
    starting.join(30)
    assert done_before_dns, "the emergency stop waited for a DNS look-up"
    assert [type(e) for e in refused] == [EmergencyStopLatched]

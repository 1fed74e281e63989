"""Stops and the emergency stop have a path no anonymous read can occupy; expensive reads are bounded.

The reads here are made to hang (a store read or a figure that never finishes) so that what
is measured is whether a request waits for them at all, not how fast anything is: on a
service whose stop shares the thread pool with reads, the stop below never gets a thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from service_support import AUTH, live_service, wait_epochs, wait_status

from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server
from crossbar_hil.reports import plots
from crossbar_hil.runs.store import RunStore

pytestmark = pytest.mark.system

ENDED = {"converged", "not_converged", "stopped", "failed"}
POOL_THREADS = 40
"""Threads of the framework's shared pool (anyio's default limiter)."""
DEADLOCK_GUARD_S = 30
"""How long a request may go unanswered before the test calls it stuck (not a speed bound: on a
service whose control path is blocked it would wait until the reads were released)."""


class Stuck:
    """Wraps a function so that every call waits for :meth:`release`; counts the calls in."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.entered = fn, 0
        self._release = threading.Event()
        self._changed = threading.Condition()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._changed:
            self.entered += 1
            self._changed.notify_all()
        self._release.wait(120)
        return self.fn(*args, **kwargs)

    def wait_entered(self, n: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.entered >= n, DEADLOCK_GUARD_S), self.entered

    def release(self) -> None:
        self._release.set()


def in_background(n: int, fn: Callable[[], object]) -> list[threading.Thread]:
    threads = [threading.Thread(target=fn, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def quietly(url: str) -> Callable[[], None]:
    def get() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=120)

    return get


@pytest.fixture
def instrument() -> Iterator[InstrumentServer]:
    with running_server(faults=FaultPlan(reply_delay_s=0.005)) as server:
        yield server


def visa_body(server: InstrumentServer, max_epochs: int) -> dict[str, Any]:
    return {
        "backend": {"name": "visa", "params": {"resource": server.resource_string, "timeout_s": 5}},
        "preset": "reference",
        "training": {"max_epochs": max_epochs, "patience": 0},
    }


def test_a_stop_and_the_emergency_stop_reach_the_instrument_while_reads_fill_the_thread_pool(
    settings: ServiceSettings, instrument: InstrumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = Stuck(RunStore.pulse_log_count)
    monkeypatch.setattr(RunStore, "pulse_log_count", stuck)
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=DEADLOCK_GUARD_S) as client:
        r = client.post("/runs", json=visa_body(instrument, 100_000), headers=AUTH)
        run_id = r.json()["id"]
        wait_epochs(client, run_id, 1)
        readers = in_background(POOL_THREADS + 5, quietly(f"{url}/runs/{run_id}/pulses"))
        try:
            stuck.wait_entered(POOL_THREADS)  # Every thread of the shared pool waits in a read.
            assert client.post(f"/runs/{run_id}/stop", headers=AUTH).status_code == 202
            estop = client.post("/emergency-stop", json={"reason": "test"}, headers=AUTH)
            assert estop.status_code == 200 and estop.json()["latched"]
            assert wait_status(client, run_id, ENDED)["status"] == "stopped"
            assert instrument.command_names()[-1] == "ABOR"
            assert client.delete("/emergency-stop", headers=AUTH).json()["latched"] is False
        finally:
            stuck.release()
            for t in readers:
                t.join(60)


def finished_run(client: httpx.Client) -> str:
    r = client.post("/runs", json={"training": {"max_epochs": 2}}, headers=AUTH)
    run_id = r.json()["id"]
    wait_status(client, run_id, ENDED)
    return str(run_id)


def test_a_figure_is_rendered_once_per_run_state_then_served_from_the_cache(
    settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = plots.plot_png

    def counted(name: str, *args: Any, **kwargs: Any) -> bytes:
        calls.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(plots, "plot_png", counted)
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=DEADLOCK_GUARD_S) as client:
        run_id = finished_run(client)
        pngs = [client.get(f"/runs/{run_id}/plots/error.png") for _ in range(3)]
        assert {r.status_code for r in pngs} == {200} and len({r.content for r in pngs}) == 1
        assert pngs[0].content.startswith(b"\x89PNG")
        assert calls == ["error"]
        assert client.get(f"/runs/{run_id}/plots/weights.png").status_code == 200
        assert calls == ["error", "weights"]


def test_figures_beyond_the_renderings_allowed_at_once_get_503_with_retry_after(
    settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossbar_hil.api.service.gates import RENDERS

    stuck = Stuck(plots.plot_png)
    monkeypatch.setattr(plots, "plot_png", stuck)
    with live_service(settings) as url, httpx.Client(base_url=url, timeout=DEADLOCK_GUARD_S) as client:
        run_id = finished_run(client)
        names = list(plots.PLOTS)
        busy = [
            t
            for name in names[:RENDERS]
            for t in in_background(1, quietly(f"{url}/runs/{run_id}/plots/{name}.png"))
        ]
        try:
            stuck.wait_entered(RENDERS)
            r = client.get(f"/runs/{run_id}/plots/{names[RENDERS]}.png")
            assert r.status_code == 503 and r.headers["Retry-After"] == "1"
            assert r.json()["type"].endswith(":busy") and "retry" in r.json()["detail"]
            assert client.get(f"/runs/{run_id}").status_code == 200  # Cheap reads are not turned away.
        finally:
            stuck.release()
            for t in busy:
                t.join(60)
        assert client.get(f"/runs/{run_id}/plots/{names[RENDERS]}.png").status_code == 200


def test_resuming_the_stream_of_a_finished_run_at_its_last_event_ends_at_once(
    service: httpx.Client,
) -> None:
    run_id = finished_run(service)
    last = service.get(f"/runs/{run_id}").json()["last_event_id"]
    for headers in ({"Last-Event-ID": str(last)}, {"Last-Event-ID": str(last + 100)}):
        with service.stream("GET", f"/runs/{run_id}/events", headers=headers, timeout=DEADLOCK_GUARD_S) as r:
            assert r.status_code == 200
            assert [line for line in r.iter_lines() if line.startswith("data:")] == []


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "\u0663", "9" * 5000, "-1"])
def test_a_last_event_id_that_is_not_an_ascii_integer_is_422_naming_the_header(
    service: httpx.Client, value: str
) -> None:
    run_id = finished_run(service)
    r = service.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": value.encode("utf-8")})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["Last-Event-ID"]

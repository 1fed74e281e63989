"""The web page at ``/`` in a real browser (the system's Chromium), against a real ``hil serve``.

Each test records every request the page makes: it must go to the service and nowhere else.
Screenshots are saved under the test's temporary directory (their paths are printed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from page_support import Requests, Served, chromium_path, hil_serve

from crossbar_hil.emulator.instrument.faults import FaultPlan
from crossbar_hil.emulator.instrument.server import InstrumentServer, running_server

pytestmark = pytest.mark.system
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the 'test' extra")
Browser, Page = sync_api.Browser, sync_api.Page

WAIT_MS = 60_000
"""Generous wait for what the page shows (a loaded CI machine), never a speed requirement."""
FINISHED = ("converged", "not_converged", "stopped", "failed", "interrupted")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with hil_serve(tmp_path_factory.mktemp("serve")) as s:
        yield s


@pytest.fixture(scope="module")
def instrument() -> Iterator[InstrumentServer]:
    """The emulated instrument over TCP, each reply a little late: a run lasts long enough to watch."""
    with running_server(faults=FaultPlan(reply_delay_s=0.005)) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser, served: Served) -> Iterator[Page]:
    """A fresh tab (its own session storage) at 1280x800; fails the test if the page errs or asks
    any other host than the service."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    requests = Requests()
    errors: list[str] = []
    tab.on("request", lambda r: requests.urls.append(r.url))
    tab.on(
        "requestfailed",
        lambda r: requests.blocked.append(r.url) if "csp" in (r.failure or "").lower() else None,
    )
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.set_default_timeout(WAIT_MS)
    try:
        yield tab
    finally:
        context.close()
    assert requests.urls, "the page made no request at all"
    assert requests.foreign(served.url) == [], "the page asked another host than its service"
    assert errors == [], f"JavaScript errors: {errors}"


def shot(tab: Page, directory: Path, name: str, full_page: bool = True) -> Path:
    """Save a screenshot (look at them: a test cannot tell whether a page is readable)."""
    path = directory / f"{name}.png"
    tab.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def give_token(tab: Page, token: str) -> None:
    """Answer the token dialog the page opens before its first request that needs one."""
    tab.wait_for_selector("#token-input", state="visible")
    tab.fill("#token-input", token)
    tab.click("#token-form button[value=ok]")


def start_from_form(tab: Page, served: Served, backend: tuple[str, str] | None = None, **fields: str) -> str:
    """Fill the new-run form (reference preset, then the backend (name, params JSON) and training
    ``fields``), start it; the new run's id."""
    tab.goto(f"{served.url}/#/new")
    tab.select_option("#f-preset", "reference")
    if backend is not None:
        tab.select_option("#f-backend-name", backend[0])
        tab.fill("#f-backend-params", backend[1])
    for name, value in fields.items():
        tab.fill(f"#f-training-{name}", value)
    tab.click("#new-run button[type=submit]")
    give_token(tab, served.token)
    tab.wait_for_url("**/#/runs/*")
    return tab.url.rsplit("/", 1)[1]


def epochs_shown(tab: Page) -> int:
    """How many epochs trained the run page has drawn (its last record's number; 0 before it shows)."""
    live = tab.locator("#live")
    return int(live.get_attribute("data-epochs") or 0) if live.count() else 0


def text(tab: Page, selector: str) -> str:
    found = tab.locator(selector)
    return found.text_content() or "" if found.count() else ""


def until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` (from Python: the page's CSP forbids evaluated strings) until it holds."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not check():
        assert time.monotonic() < deadline, f"the page never showed {what}"
        time.sleep(0.05)


def test_a_run_started_from_the_form_grows_on_the_chart_until_it_ends(
    page: Page, served: Served, instrument: InstrumentServer, tmp_path: Path
) -> None:
    params = f'{{"resource": "{instrument.resource_string}", "timeout_s": 5}}'
    run_id = start_from_form(page, served, backend=("visa", params), max_epochs="20")
    seen: list[int] = []
    deadline = time.monotonic() + 10 * WAIT_MS / 1000
    while (status := text(page, "#run-status")) not in FINISHED:
        assert time.monotonic() < deadline, f"the run never ended on the page: {seen}"
        n = epochs_shown(page)
        if not seen or n != seen[-1]:
            seen.append(n)
        time.sleep(0.02)
    page.wait_for_selector("#downloads a[href$='.png']")
    final = epochs_shown(page)
    stored = served.api.get(f"/runs/{run_id}").json()
    assert status == stored["status"] == "not_converged"
    assert final == stored["epochs"] == 20  # Epochs trained: the read before training is not one.
    assert "Epochs trained20" in page.text_content("#summary")
    assert len({n for n in seen if 0 < n < final}) >= 1, f"the chart never showed a part of the run: {seen}"
    assert page.locator("#conductance-grid svg").count() == 16
    # Every device's line has a point per epoch (a marker each up to 40 epochs, else every k-th).
    assert page.locator("#conductance-grid svg path.line").count() == 16
    assert "G+ n0" in page.text_content("#conductance-grid")
    assert page.locator("#outputs-grid svg").count() == 6
    assert f"run {run_id}" in page.text_content("#run-name")
    assert instrument.resource_string in page.text_content("#summary")
    shot(page, tmp_path, "run-finished")
    page.set_viewport_size({"width": 1280, "height": 1600})
    page.screenshot(path=str(tmp_path / "run-page-top.png"))
    print(f"screenshot: {tmp_path / 'run-page-top.png'} (docs/run-page.png is one of these)")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, tmp_path, "run-finished-phone")
    # Readable at a phone's width: nothing wider than the screen (wide tables scroll in a box).
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


def test_a_finished_run_reloads_from_the_store(page: Page, served: Served, tmp_path: Path) -> None:
    body = {"preset": "reference", "training": {"max_epochs": 5}}
    run = served.api.post("/runs", json=body, headers=served.auth)
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    page.goto(f"{served.url}/#/runs/{run_id}")
    page.wait_for_selector("#downloads a[href$='.png']")
    page.reload()
    page.wait_for_selector("#downloads a[download$='.json']")
    until(lambda: epochs_shown(page) == 5, "the 5 epochs of the run")
    assert page.text_content("#run-status") == "not_converged"
    assert page.locator("#conductance-grid svg").count() == 16
    assert page.get_attribute("#stop-run", "disabled") is not None
    shot(page, tmp_path, "run-reloaded")


def test_a_run_stopped_from_its_page_is_recorded_as_stopped(
    page: Page, served: Served, tmp_path: Path
) -> None:
    run_id = start_from_form(page, served, max_epochs="100000")
    until(lambda: epochs_shown(page) >= 3, "3 epochs")
    page.click("#stop-run")
    until(lambda: text(page, "#run-status") == "stopped", "the run stopped")
    stored = served.api.get(f"/runs/{run_id}").json()
    assert stored["status"] == "stopped" and stored["outcome"] == "stopped"
    assert 3 <= stored["epochs"] < 100_001
    until(lambda: epochs_shown(page) == stored["epochs"], "every stored epoch")
    shot(page, tmp_path, "run-stopped", full_page=False)


def test_the_emergency_stop_latches_and_clears_from_the_instruments_page(
    page: Page, served: Served, tmp_path: Path
) -> None:
    page.goto(f"{served.url}/#/instruments")
    page.fill("#estop-reason", "smoke from the probe station")
    page.click("#latch-estop")
    give_token(page, served.token)
    until(lambda: text(page, "#latch-state").startswith("LATCHED"), "the latch")
    state = served.api.get("/emergency-stop").json()
    assert state["latched"] and state["reason"] == "smoke from the probe station"
    assert "smoke from the probe station" in page.text_content("#estop-state")
    shot(page, tmp_path, "estop-latched", full_page=False)
    page.click("#clear-estop")  # The token is kept: no second dialog.
    until(lambda: text(page, "#latch-state").startswith("Not latched"), "the latch cleared")
    assert served.api.get("/emergency-stop").json()["latched"] is False


def test_a_bad_value_shows_the_apis_message_beside_its_field(
    page: Page, served: Served, tmp_path: Path
) -> None:
    before = served.api.get("/runs").json()["total"]
    page.goto(f"{served.url}/#/new")
    page.fill("#f-training-beta", "-5")
    page.click("#new-run button[type=submit]")
    give_token(page, served.token)
    error = page.locator("#f-training-beta-error")
    error.wait_for(state="visible")
    assert "greater than 0" in error.text_content()
    assert page.get_attribute("#f-training-beta", "aria-invalid") == "true"
    assert served.api.get("/runs").json()["total"] == before
    shot(page, tmp_path, "form-bad-value", full_page=False)


def test_presets_fill_the_form(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/#/new")
    assert page.input_value("#f-training-rule") == "planned"
    page.select_option("#f-preset", "reference")
    assert page.input_value("#f-training-rule") == "manhattan"
    assert float(page.input_value("#f-training-beta")) == 6e6
    assert page.input_value("#f-training-target_high") == "0.8"


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_the_api_docs_render_from_the_service_alone(
    page: Page, served: Served, path: str, rendered: str
) -> None:
    page.goto(f"{served.url}{path}")
    title = page.locator(rendered).first
    title.wait_for(state="visible")
    assert "crossbar-hil run control" in (title.text_content() or "")
    # The page fixture fails the test if any request went to another host (no CDN, no fonts).


def focused(tab: Page) -> str:
    """The focused element as 'tag#id' (or its text for an element without an id)."""
    return str(
        tab.evaluate(
            "() => { const e = document.activeElement;"
            " return e.tagName.toLowerCase() + '#' + (e.id || e.textContent.trim()); }"
        )
    )


def test_the_emergency_stop_works_from_the_keyboard_alone(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/#/instruments")
    page.locator("#latch-estop").wait_for()
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.append(focused(page))
        assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none", seen[
            -1
        ]
        if seen[-1] == "button#latch-estop":
            break
    for stop in ("a#Runs", "a#New run", "a#Instruments", "button#estop-button", "input#estop-reason"):
        assert stop in seen, seen
    assert seen[-1] == "button#latch-estop", seen
    page.keyboard.press("Enter")
    page.locator("#token-input").wait_for(state="visible")
    page.keyboard.type(served.token)
    page.keyboard.press("Enter")
    until(lambda: text(page, "#latch-state").startswith("LATCHED"), "the latch")
    page.keyboard.press("Tab")
    assert focused(page) == "button#clear-estop"
    page.keyboard.press("Enter")
    until(lambda: text(page, "#latch-state").startswith("Not latched"), "the latch cleared")
    assert served.api.get("/emergency-stop").json()["latched"] is False


def test_a_run_paused_and_resumed_from_its_page(page: Page, served: Served, tmp_path: Path) -> None:
    run_id = start_from_form(page, served, max_epochs="100000")
    until(lambda: epochs_shown(page) >= 2, "2 epochs")
    page.click("#pause-run")
    # Resume is offered from the click on: a pause not yet taken can be withdrawn too.
    until(lambda: page.get_attribute("#resume-run", "disabled") is None, "resume offered")
    until(lambda: text(page, "#run-status") == "paused", "the run paused")
    assert served.api.get(f"/runs/{run_id}").json()["status"] == "paused"
    assert page.get_attribute("#pause-run", "disabled") is not None, page.inner_html(".run-bar")
    shot(page, tmp_path, "run-paused", full_page=False)
    held = served.api.get(f"/runs/{run_id}").json()["epochs"]
    page.click("#resume-run")
    until(lambda: text(page, "#run-status") == "running", "the run resumed")
    until(lambda: epochs_shown(page) > held, "an epoch after the pause")
    page.click("#stop-run")
    until(lambda: text(page, "#run-status") == "stopped", "the run stopped")


def test_the_instruments_page_shows_a_queue_and_stops_and_reorders_it(
    page: Page, served: Served, instrument: InstrumentServer, tmp_path: Path
) -> None:
    backend = {"name": "visa", "params": {"resource": instrument.resource_string, "timeout_s": 5}}
    body = {"preset": "reference", "backend": backend, "training": {"max_epochs": 100000}}
    ids = []
    for if_busy in ("refuse", "queue", "queue"):
        r = served.api.post("/runs", json={**body, "if_busy": if_busy}, headers=served.auth)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    first, second, third = ids
    try:
        page.goto(f"{served.url}/#/instruments")
        statuses = [served.api.get(f"/runs/{i}").json()["status"] for i in ids]
        assert statuses == ["running", "queued", "queued"], statuses
        queues = served.api.get("/queue").json()["queues"]
        name = next(q["name"] for q in queues if second in [r["id"] for r in q["items"]])
        queue = page.locator(f"section.queue[data-queue='{name}']")
        queue.wait_for()
        until(lambda: queue.locator("ol a").all_text_contents() == [second, third], "the queue")
        queue.locator("button.queue-stop").click()
        give_token(page, served.token)
        until(lambda: "stopped" in (queue.locator("h3").text_content() or ""), "the queue stopped")
        shot(page, tmp_path, "queue-stopped")
        queue.locator("button.queue-up").click()  # The third run, one up: next to start.
        until(
            lambda: queue.locator("ol a").all_text_contents() == [third, second],
            "the new order",
        )
        waiting = served.api.get("/queue", params={"instrument": name}).json()
        assert waiting["queues"][0]["state"] == "stopped"
        assert [r["id"] for r in waiting["queues"][0]["items"]] == [third, second]
    finally:
        for run_id in (third, second, first):
            served.api.post(f"/runs/{run_id}/stop", headers=served.auth)


def test_the_runs_page_lists_runs_and_filters_them_by_status_and_instrument(
    page: Page, served: Served, tmp_path: Path
) -> None:
    body = {"preset": "reference", "training": {"max_epochs": 2}}
    run_id = served.api.post("/runs", json=body, headers=served.auth).json()["id"]
    long = {"preset": "reference", "training": {"max_epochs": 100000}}
    stopped = served.api.post("/runs", json=long, headers=served.auth).json()["id"]
    served.api.post(f"/runs/{stopped}/stop", headers=served.auth)
    page.goto(f"{served.url}/#/runs")
    row = page.locator(f"tr[data-run='{run_id}']")
    until(lambda: row.count() == 1 and row.get_attribute("data-status") == "not_converged", "the ended run")
    assert "manhattan" in (row.text_content() or "") and "reference" in (row.text_content() or "")
    shot(page, tmp_path, "runs")
    page.select_option("#filter-status", "stopped")
    until(lambda: page.locator(f"tr[data-run='{run_id}']").count() == 0, "the filter by status")
    until(lambda: page.locator(f"tr[data-run='{stopped}']").count() == 1, "the stopped run")
    rows = page.locator("#runs-table tbody tr")  # Read at once: the list is redrawn as it refreshes.
    statuses = set(rows.evaluate_all("(rows) => rows.map((r) => r.dataset.status)"))
    assert statuses == {"stopped"}
    page.select_option("#filter-status", "")
    page.select_option("#filter-instrument", "emulator (emulated)")

    def rows_shown() -> list[str]:
        return rows.all_text_contents()

    # The list is refreshed after each change of a filter: wait for the instrument filter's list.
    until(
        lambda: any(run_id in t for t in rows_shown()) and all("TCPIP" not in t for t in rows_shown()),
        "the filter by instrument",
    )
    assert all("emulator (emulated)" in t for t in rows_shown())

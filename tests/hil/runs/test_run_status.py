"""Run statuses: every transition of the table, allowed and refused, in the store as in the check."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from crossbar_hil.runs.status import (
    ACTIVE,
    TRANSITIONS,
    RunStatus,
    TransitionError,
    check_transition,
    status_of_outcome,
)
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import RunConfig

PAIRS = list(itertools.product(RunStatus, RunStatus))


def path_to(status: RunStatus) -> list[RunStatus]:
    """Allowed statuses leading from queued to ``status`` (breadth first through the table)."""
    paths = {RunStatus.QUEUED: [RunStatus.QUEUED]}
    frontier = [RunStatus.QUEUED]
    while frontier:
        current = frontier.pop(0)
        for nxt in sorted(TRANSITIONS[current]):
            if nxt not in paths:
                paths[nxt] = [*paths[current], nxt]
                frontier.append(nxt)
    return paths[status]


def test_the_table_covers_every_status_and_every_status_is_reachable() -> None:
    assert set(TRANSITIONS) == set(RunStatus)
    for status in RunStatus:
        assert path_to(status)[-1] is status
    assert {
        RunStatus.QUEUED,
        RunStatus.RUNNING,
        RunStatus.PAUSED,
        RunStatus.SUSPENDED,
        RunStatus.STOPPING,
    } == ACTIVE
    assert {s for s in RunStatus if s.finished} == set(RunStatus) - ACTIVE


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition_is_allowed_or_refused_as_the_table_says(
    tmp_path: Path, current: RunStatus, target: RunStatus
) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    run = store.create_run(RunConfig())
    for step in path_to(current)[1:]:
        store.transition(run.id, step)
    assert store.get_run(run.id).status is current
    before = store.get_run(run.id).last_event
    if target in TRANSITIONS[current]:
        assert check_transition(current, target) is target
        assert store.transition(run.id, target).status is target
        assert store.events(run.id, before)[0].data["status"] == target.value
    else:
        with pytest.raises(TransitionError, match=f"a {current} run cannot become {target}"):
            check_transition(current, target)
        with pytest.raises(TransitionError):
            store.transition(run.id, target)
        assert store.get_run(run.id).status is current
        assert store.get_run(run.id).last_event == before  # Nothing recorded for a refused change.
    store.close()


def test_every_outcome_of_the_trainer_has_a_final_status() -> None:
    from crossbar_hil.training.history import Outcome

    assert len(Outcome) == 6
    for outcome in Outcome:
        assert status_of_outcome(outcome).finished
        assert status_of_outcome(outcome.value) is RunStatus(outcome.status)
    with pytest.raises(ValueError, match="unknown outcome 'odd'"):
        status_of_outcome("odd")  # type: ignore[arg-type]


def test_finished_statuses_have_no_way_out_and_outcomes_map_to_them() -> None:
    assert {status_of_outcome(o) for o in ("converged", "max_epochs", "stopped", "fault")} == {
        RunStatus.CONVERGED,
        RunStatus.NOT_CONVERGED,
        RunStatus.STOPPED,
        RunStatus.FAILED,
    }
    for status in (RunStatus.STOPPED, RunStatus.CONVERGED, RunStatus.FAILED, RunStatus.INTERRUPTED):
        assert status.finished and not TRANSITIONS[status]


def test_an_outcome_carries_its_status_and_whether_the_run_ended_by_itself() -> None:
    from crossbar_hil.training.history import Outcome

    assert [o.value for o in Outcome] == [
        "converged",
        "max_epochs",
        "infeasible",
        "stalled",
        "stopped",
        "fault",
    ]
    assert [o for o in Outcome if o.finished] == ["converged", "max_epochs", "infeasible", "stalled"]
    assert [o for o in Outcome if o.unconverged] == ["max_epochs", "infeasible", "stalled"]
    assert status_of_outcome(Outcome.INFEASIBLE) is RunStatus.NOT_CONVERGED
    assert status_of_outcome(Outcome.STOPPED) is RunStatus.STOPPED
    assert status_of_outcome(Outcome.FAULT) is RunStatus.FAILED

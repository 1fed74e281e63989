"""The exit status of a command follows from how its run ended (its :class:`Outcome`)."""

from __future__ import annotations

import pytest
from crossbar_hil.api.cli.stopping import EXIT_FAULT, EXIT_OK, EXIT_STOPPED, exit_status
from crossbar_hil.training.history import Outcome


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome.CONVERGED, EXIT_OK),
        (Outcome.MAX_EPOCHS, EXIT_OK),
        (Outcome.INFEASIBLE, EXIT_OK),
        (Outcome.STALLED, EXIT_OK),
        (Outcome.STOPPED, EXIT_STOPPED),
        (Outcome.FAULT, EXIT_FAULT),
    ],
)
def test_a_run_that_ended_by_itself_exits_0_a_stop_4_a_fault_3(outcome: Outcome, expected: int) -> None:
    assert exit_status(outcome) == expected

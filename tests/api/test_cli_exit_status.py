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


def test_a_stop_that_interrupts_the_handshake_exits_4_even_when_the_driver_calls_it_a_link_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under load the SIGTERM of a handshake can land inside a driver that wraps what it catches
    as a communication error: the run was stopped by the user, not by a dead instrument."""
    from crossbar_hil.api.cli import backend_options
    from crossbar_hil.api.cli.stopping import SignalStop
    from crossbar_hil.seam.errors import CommunicationError

    def handshake_cut_by_the_stop(name: str, params: dict) -> None:
        signals.stop.set("stopped by SIGTERM")  # What the handler does, then the driver wraps it:
        raise CommunicationError("cannot connect: the VISA session was interrupted")

    monkeypatch.setattr(backend_options, "create_backend", handshake_cut_by_the_stop)
    with SignalStop("hil train") as signals:
        status = backend_options.open_backend("hil train", "visa", {}, signals)
    assert status == EXIT_STOPPED
    assert "stopped by SIGTERM while connecting to the instrument" in capsys.readouterr().err


def test_a_link_error_without_a_stop_still_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crossbar_hil.api.cli import backend_options
    from crossbar_hil.api.cli.stopping import SignalStop
    from crossbar_hil.seam.errors import CommunicationError

    def refused(name: str, params: dict) -> None:
        raise CommunicationError("cannot connect: connection refused")

    monkeypatch.setattr(backend_options, "create_backend", refused)
    with SignalStop("hil train") as signals:
        assert backend_options.open_backend("hil train", "visa", {}, signals) == EXIT_FAULT
    assert "connection refused" in capsys.readouterr().err

"""Why a run was not started, or cannot be acted on: the run manager's refusals, declared once.

Each edge maps them to what it shows (the service: one table of HTTP problems,
:mod:`crossbar_hil.api.service.problems`; the CLI: an exit code and a message).
"""

from __future__ import annotations

from collections.abc import Mapping

from crossbar_hil.seam.errors import HilError


class RunRefused(HilError):
    """A run was not started; the message says why."""


class InvalidRun(RunRefused, ValueError):
    """The config cannot run: ``errors`` maps each offending field (dotted path) to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class InstrumentBusy(RunRefused):
    """Another run holds the instrument (or runs wait in its queue)."""

    def __init__(self, instrument: str, run_id: str) -> None:
        self.instrument, self.run_id = instrument, run_id
        super().__init__(
            f"instrument {instrument!r} is in use by run {run_id}; stop it, wait for it to end, "
            'or queue this run ("if_busy": "queue")'
        )


class TooManyRuns(RunRefused):
    """The limit of emulator runs side by side is reached."""


class EmergencyStopLatched(RunRefused):
    """The emergency stop is latched: nothing starts until it is cleared."""


class BackendUnavailable(RunRefused):
    """The backend could not be opened (instrument unreachable, refused, wrong answer)."""


class NotControllable(HilError, ValueError):
    """The run is not in a status the request applies to (pause a finished run, move a running one)."""

    def __init__(self, message: str, run_id: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(message)

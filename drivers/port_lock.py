"""An exclusive OS lock on a serial device, whichever driver opens it.

pyserial's ``exclusive=True`` (the serial driver) takes ``flock(LOCK_EX | LOCK_NB)`` on the
port; a VISA session on ``ASRL/dev/...::INSTR`` took none, so the serial driver and the VISA
driver could both hold one port and interleave their commands. :class:`SerialDeviceLock`
takes the same ``flock`` on the device before VISA opens it, so any two crossbar-hil
sessions on one device (the CLI's or the service's, through either driver) exclude each other.
An advisory lock: a program that does not ask for one is not stopped by it.
"""

from __future__ import annotations

import fcntl
import os
import re

from crossbar_hil.drivers.connect_errors import explain_os_error
from crossbar_hil.seam.errors import CommunicationError

_ASRL_PATH = re.compile(r"^ASRL(?P<path>/[^:]+)::INSTR$", re.IGNORECASE)


def serial_device(resource: str) -> str | None:
    """The device path of an ``ASRL<path>::INSTR`` VISA resource, else None."""
    m = _ASRL_PATH.match(resource.strip())
    return m["path"] if m else None


class SerialDeviceLock:
    """Holds ``flock(LOCK_EX)`` on the device at ``path`` until :meth:`release`; refuses one held
    by another session with :class:`~crossbar_hil.seam.errors.CommunicationError` ("in use")."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            raise CommunicationError(explain_os_error(path, e)) from e
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._fd)
            self._fd = None
            raise CommunicationError(explain_os_error(path, e)) from e

    @classmethod
    def take(cls, path: str) -> SerialDeviceLock | None:
        """The lock on ``path``; None when there is no such device (opening it then reports that,
        in the words of whoever opens it: a VISA library may know the port by another path)."""
        try:
            return cls(path)
        except CommunicationError as e:
            if isinstance(e.__cause__, FileNotFoundError):
                return None
            raise

    def release(self) -> None:
        """Unlock and close. Idempotent."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

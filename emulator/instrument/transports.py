"""Byte streams the instrument server serves over: a TCP connection or the master side of a pty."""

from __future__ import annotations

import os
import select
import socket
import tty
from contextlib import suppress
from typing import Literal, Protocol

Transport = Literal["tcp", "pty"]

_READ_CHUNK = 65536


class Stream(Protocol):
    def recv(self, timeout_s: float | None = None) -> bytes | None: ...  # b"" at end or stop, None: timeout
    def send(self, data: bytes) -> None: ...  # raises OSError when the peer is gone
    def close(self) -> None: ...


class SocketStream:
    def __init__(self, conn: socket.socket, wake_fd: int) -> None:
        self.conn = conn
        self._wake_fd = wake_fd

    def recv(self, timeout_s: float | None = None) -> bytes | None:
        """Bytes received; b"" at the end of the stream or on stop; None after ``timeout_s`` (s)."""
        try:
            watched: list[socket.socket | int] = [self.conn, self._wake_fd]
            ready, _, _ = select.select(watched, [], [], timeout_s)
            if not ready:
                return None
            return b"" if self._wake_fd in ready else self.conn.recv(_READ_CHUNK)
        except (OSError, ValueError):
            return b""

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def close(self) -> None:
        with suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()


class PtyStream:
    """The master side of a pseudo-terminal; the server keeps a slave fd open too, so that
    clients may open and close the device path any number of times."""

    def __init__(self, wake_fd: int) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._wake_fd = wake_fd
        self._closed = False

    def recv(self, timeout_s: float | None = None) -> bytes | None:
        """Bytes received; b"" on stop; None after ``timeout_s`` (s)."""
        while True:
            try:
                ready, _, _ = select.select([self.master, self._wake_fd], [], [], timeout_s)
                if not ready:
                    return None
                return b"" if self._wake_fd in ready else os.read(self.master, _READ_CHUNK)
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return b""

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [self.master], [], 0.1)
            if self._closed or select.select([self._wake_fd], [], [], 0)[0]:
                raise OSError("pty server stopped")
            if writable:
                with suppress(BlockingIOError):
                    view = view[os.write(self.master, view) :]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.master)
            os.close(self.slave)

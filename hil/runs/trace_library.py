"""Named traces for the service: a folder of ``.dat`` / ``.csv`` traces, chosen by name, never by path.

The service refuses file paths in a request body (a client may not name the server's
files). ``hil serve --trace-dir DIR`` gives it a library instead: every trace file in
DIR is offered by its name (the file name without its suffix), listed by
``GET /traces``, and an emulator run asks for one with ``backend.params.trace_name``;
the run manager replaces the name by the library's file before the backend is built.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from crossbar_hil.runs.errors import InvalidRun
from crossbar_hil.trace_file import TraceFormatError, load_trace
from crossbar_hil.training.config import RunConfig

TRACE_NAME = "trace_name"
"""The backend parameter that names a trace of the library."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SUFFIXES = (".dat", ".csv")


class TraceLibrary:
    """The trace files of ``folder`` by name (read when asked, so a file added later is found)."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ValueError(f"--trace-dir {folder}: not a folder")
        self.folder = folder.resolve()

    def paths(self) -> dict[str, Path]:
        """Name -> file, for every trace file with a plain name in the folder."""
        return {
            p.stem: p
            for p in sorted(self.folder.iterdir())
            if p.suffix.lower() in SUFFIXES and p.is_file() and _NAME.match(p.stem)
        }

    def list(self) -> list[dict[str, Any]]:
        """Name, pulses and conductance range (S) of each trace that reads; unreadable ones are left out."""
        out = []
        for name, path in self.paths().items():
            try:
                g = load_trace(path).conductances_siemens
            except (TraceFormatError, ValueError, OSError):
                continue
            out.append(
                {
                    "name": name,
                    "n_pulses": int(g.size - 1),
                    "g_min_siemens": float(g.min()),
                    "g_max_siemens": float(g.max()),
                }
            )
        return out

    def resolve(self, config: RunConfig) -> RunConfig:
        """``config`` with ``backend.params.trace_name`` replaced by the library's file (``trace``)."""
        params = dict(config.backend.params)
        name = params.pop(TRACE_NAME, None)
        if name is None:
            return config
        known = self.paths()
        if not isinstance(name, str) or name not in known:
            raise InvalidRun(
                {
                    f"backend.params.{TRACE_NAME}": f"{name!r} is not a trace of this service; known: "
                    f"{', '.join(known) or 'none'} (GET /traces)"
                }
            )
        if config.backend.name != "emulator":
            raise InvalidRun({f"backend.params.{TRACE_NAME}": "only the emulator replays a trace"})
        params["trace"] = str(known[name])
        return config.model_copy(update={"backend": config.backend.model_copy(update={"params": params})})


def resolve_trace_name(config: RunConfig, library: TraceLibrary | None) -> RunConfig:
    """:meth:`TraceLibrary.resolve`, or a refusal naming the field when the service has no library."""
    if TRACE_NAME not in config.backend.params:
        return config
    if library is None:
        raise InvalidRun(
            {f"backend.params.{TRACE_NAME}": "this service has no trace library (hil serve --trace-dir)"}
        )
    return library.resolve(config)

"""Where a run's results go: checked before the first pulse, written so they cannot be lost.

A run that has changed its devices must not end without its results, so every
output path is checked before anything is sent (:func:`check_output_file`,
:func:`check_output_dir`), and files are written atomically
(:func:`write_text_atomic`: a temporary file in the same directory, then a
rename), so an interruption leaves either the old file or the whole new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from crossbar_hil.seam.errors import HilError


class OutputPathError(HilError, ValueError):
    """An output path cannot be written; raised before anything is sent to the instrument."""


def check_output_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or :class:`OutputPathError` saying why the file could not be written."""
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{what} {p} is a directory; give a file name, e.g. {p / 'run.json'}")
    parent = p.parent
    if not parent.is_dir():
        raise OutputPathError(
            f"{what} {p}: directory {parent} does not exist; create it or choose another path"
        )
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputPathError(f"{what} {p}: not writable; choose another path")
    return p


def check_output_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or :class:`OutputPathError` unless it is, or can be created as, a
    writable directory (it is created when the files are saved)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{what} {p} exists and is not a directory; choose a directory")
    existing = p
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{what} {p}: {existing} is not a directory; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {p}: {existing} is not writable; choose another path")
    return p


def write_text_atomic(path: str | Path, text: str | Iterable[str]) -> Path:
    """Write ``text`` (a string, or pieces of one written as they come) to ``path`` through a
    temporary file in the same directory and a rename."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.writelines([text] if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a result file is an ordinary file.
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p

"""Reading a user's JSON file (a run config, a task) with one-line errors that name the file.

A directory, a missing file, a JSON syntax error (with line and column) or the
wrong kind of document each raise :class:`InputFileError`, a ``ValueError``, so
an edge reports it as bad input before anything reaches the hardware.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from crossbar_hil.seam.errors import HilError, describe_validation_error

M = TypeVar("M", bound=BaseModel)


class InputFileError(HilError, ValueError):
    """A user's input file cannot be used; the message names the file and why."""


def read_json_file(path: str | Path, what: str) -> Any:
    """The parsed JSON of ``path``; ``what`` names the document in messages (e.g. "task")."""
    p = Path(path)
    if p.is_dir():
        raise InputFileError(f"{what} file {p} is a directory; expected a JSON file")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{what} file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputFileError(f"{what} file {p} cannot be read: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(
            f"{what} file {p}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """:func:`read_json_file` that also requires a JSON object (``{...}``)."""
    data = read_json_file(path, what)
    if not isinstance(data, dict):
        raise InputFileError(f"{what} file {path}: expected a JSON object {{...}}, got a JSON {_kind(data)}")
    return data


def load_model(model: type[M], path: str | Path, what: str) -> M:
    """A pydantic ``model`` from the JSON object in ``path``; errors name the file and the field."""
    data = read_json_object(path, what)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InputFileError(f"{what} file {path}: {describe_validation_error(e)}") from None


def _kind(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")

"""Backends by name: the ``crossbar_hil.backends`` entry-point group, or ``module:attr``.

An entry point names a callable that takes the backend's parameter mapping and
returns a :class:`CrossbarBackend`. A lab adds its own backend by declaring an
entry point in its own package; the core never imports drivers or the emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from crossbar_hil.seam import CrossbarBackend

GROUP = "crossbar_hil.backends"

BackendFactory = Callable[[Mapping[str, Any]], CrossbarBackend]


def available_backends() -> dict[str, str]:
    """Registered backend names and what they point at."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def backend_factory(name: str) -> BackendFactory:
    """The factory registered as ``name``, or the ``module:attr`` it spells."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            factory: BackendFactory = ep.load()
            return factory
    if ":" in name:
        module, _, attr = name.partition(":")
        obj: Any = import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        found: BackendFactory = obj
        return found
    known = ", ".join(sorted(available_backends())) or "none (is crossbar-hil installed?)"
    raise ValueError(f"backend {name!r} is not registered; known backends: {known}")


def create_backend(name: str, params: Mapping[str, Any] | None = None) -> CrossbarBackend:
    """Build the backend registered as ``name`` with ``params``."""
    return backend_factory(name)(dict(params or {}))

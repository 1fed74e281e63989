"""The seam between the core and any crossbar: the backend interface, its limits, its errors,
and the registry that builds backends by name."""

from crossbar_hil.seam.backend import CrossbarBackend
from crossbar_hil.seam.limits import BackendInfo, Limits, Pulse, UserLimits

__all__ = ["BackendInfo", "CrossbarBackend", "Limits", "Pulse", "UserLimits"]

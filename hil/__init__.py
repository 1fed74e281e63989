"""crossbar-hil: hardware-in-the-loop in-situ training of memristor crossbars (the core).

``crossbar_hil.__version__`` is the installed distribution's version (``importlib.metadata``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crossbar-hil")
    """Version of the installed crossbar-hil distribution."""
except PackageNotFoundError:  # Imported from a checkout that was never installed.
    __version__ = "0+unknown"

"""Parameter sweeps of emulated trainings: convergence share, epochs and feasibility over a grid.

:mod:`~crossbar_hil.emulator.sweep.grid` (parameters, grid syntax, configs per point),
:mod:`~crossbar_hil.emulator.sweep.run` (chunks on any concurrent.futures executor, local or Dask),
:mod:`~crossbar_hil.emulator.sweep.table` (one row per point, the CSV files and their columns).
"""

from crossbar_hil.emulator.sweep.grid import PARAMETERS, GridError, parse_grid, points
from crossbar_hil.emulator.sweep.run import SweepResult, run_sweep
from crossbar_hil.emulator.sweep.table import COLUMNS, rows, write_tables

__all__ = [
    "COLUMNS",
    "PARAMETERS",
    "GridError",
    "SweepResult",
    "parse_grid",
    "points",
    "rows",
    "run_sweep",
    "write_tables",
]

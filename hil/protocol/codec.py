"""The crossbar wire protocol, version 1.1: the one codec used by both ends of the line.

Drivers (the client side, :mod:`~crossbar_hil.protocol.client`) call :func:`encode_command`
and :func:`decode_reply`; a controller or the emulator's instrument server (the instrument
side, :mod:`~crossbar_hil.protocol.instrument`) calls :func:`parse_command`,
:func:`validate_command` and the ``encode_*`` functions. The declarations are in
:mod:`~crossbar_hil.protocol.commands`, the number grammar in :mod:`~crossbar_hil.protocol.grammar`;
this module gathers them (the codec as one import).
Every command is declared once, in :data:`COMMANDS` (in the spirit of PyMeasure's
``Instrument.control``): its name, its arguments (name, kind, unit, the physical
quantity that bounds it), its reply (kind and the names and units of its fields)
and how long it takes on the instrument (:class:`Duration`). The codec, the
emulated instrument's handlers (:mod:`crossbar_hil.emulator.instrument.controller`), the
drivers' reply timeouts and maximum reply lengths, and the ``CONF:LIM?`` /
``CONF:CAP?`` / ``CONF:SHAPE?`` field layouts all derive from it. The page
``PROTOCOL.md`` next to this module is the specification for firmware authors.

Floats are always written with ``repr(float(x))`` (shortest round-trip form), so
a value crosses the line bit-exactly in both directions.
"""

from __future__ import annotations

from crossbar_hil.protocol import client, commands, grammar, instrument
from crossbar_hil.protocol.client import *  # noqa: F403 - the façade: every public name of the four
from crossbar_hil.protocol.commands import *  # noqa: F403
from crossbar_hil.protocol.grammar import *  # noqa: F403
from crossbar_hil.protocol.instrument import *  # noqa: F403

__all__ = [*commands.__all__, *grammar.__all__, *client.__all__, *instrument.__all__]

"""Backends for real crossbar controllers, speaking the crossbar wire protocol.

* :class:`~drivers.visa_backend.VisaBackend` (registry name ``visa``): any VISA
  resource through PyVISA (pyvisa-py by default).
* :class:`~drivers.serial_backend.SerialBackend` (``serial``): a serial port, pty
  or pyserial URL.
* :mod:`drivers.discovery`: which VISA resources and serial ports are visible.

Both are :class:`~drivers.protocol_backend.ProtocolBackend` with a different link.
"""

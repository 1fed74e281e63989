"""Backends for real crossbar controllers, speaking the crossbar wire protocol.

* :class:`~crossbar_hil.drivers.visa_backend.VisaBackend` (registry name ``visa``): any VISA
  resource through PyVISA (pyvisa-py by default).
* :class:`~crossbar_hil.drivers.serial_backend.SerialBackend` (``serial``): a serial port, pty
  or pyserial URL.
* :mod:`crossbar_hil.drivers.discovery`: which VISA resources and serial ports are visible.

Both are :class:`~crossbar_hil.drivers.protocol_backend.ProtocolBackend` with a different link.
"""

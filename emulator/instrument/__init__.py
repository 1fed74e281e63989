"""The emulated instrument: a crossbar served over the wire protocol, like a physical controller."""

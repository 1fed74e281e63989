"""The project's own data, installed as the package ``crossbar_hil.data`` (see ``hil/resources.py``)."""

"""The project's own data, installed as the package ``hil.data`` (see ``hil/resources.py``)."""

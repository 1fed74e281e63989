"""Runs kept for later: the run store (SQLite), the recorder that writes a run into it as it goes,
the run manager that starts and stops runs in the background, and the run statuses."""

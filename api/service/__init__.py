"""The run-control service: start, watch and stop training runs over REST (FastAPI).

:func:`api.service.app.create_app` builds the application from
:class:`api.service.settings.ServiceSettings`; ``hil serve`` runs it under uvicorn.
The service is an edge: runs go through :class:`hil.runs.manager.RunManager` and
:func:`hil.procedures.training.run_training`, and are kept in the
:class:`hil.runs.store.RunStore`.
"""

"""The run-control service: start, watch and stop training runs over REST (FastAPI).

:func:`crossbar_hil.api.service.app.create_app` builds the application from
:class:`crossbar_hil.api.service.settings.ServiceSettings`; ``hil serve`` runs it under uvicorn.
The service is an edge: runs go through :class:`crossbar_hil.runs.manager.RunManager` and
:func:`crossbar_hil.procedures.training.run_training`, and are kept in the
:class:`crossbar_hil.runs.store.RunStore`.
"""

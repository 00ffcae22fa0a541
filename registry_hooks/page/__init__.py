"""The Deployments page and the guard of the controller's ``deploy.*`` tags, inside ``mlflow
server --app-name registry-hooks`` (see README, "The Deployments page").

* :mod:`.guard`: set/delete of ``deploy.*`` tags through the REST API is the controller's alone.
* :mod:`.token`: how the server recognises the controller (a shared token in a header).
* :mod:`.view`: the page's data: the controller's state rows, the registry's tags, the audit log.
* :mod:`.routes`: the page, its JSON API (state, lineage, retry) and the link in MLflow's UI.

Nothing heavy is imported here: MLflow loads :mod:`.token` in every client process.
"""

from __future__ import annotations

from typing import Any


def install(app: Any, auth: bool = False) -> None:
    """Add the guard, the page and its API to MLflow's Flask ``app`` (with basic-auth: ``auth``)."""
    from registry_hooks.page import guard, routes

    guard.install(app)
    routes.install(app, auth)


__all__ = ["install"]

"""``mlflow server --app-name registry-hooks``: the MLflow server, recording registry changes.

After a request succeeds, every stage transition and every alias set or delete made through
``/api/2.0/mlflow/...`` or ``/ajax-api/2.0/mlflow/...`` (what the UI calls) is recorded in the
controller's database (``MLFLOW_REGISTRY_HOOKS_DB``, default ``sqlite:///registry-hooks.db``) with
the user when auth is on, and the controllers at ``MLFLOW_REGISTRY_HOOKS_WAKE_URLS`` (comma
separated, e.g. ``http://127.0.0.1:8470``) are woken. This happens on a background thread and
never breaks or slows the request: a failure is logged, and the controller's poller finds the
change anyway.

``--app-name registry-hooks-auth`` is the same on top of MLflow's ``basic-auth`` app, for servers
that need both.

Both serve the Deployments page at ``/registry-hooks/deployments`` (with a link on MLflow's UI) and
refuse anyone but the controller a write of the ``deploy.*`` tags (:mod:`registry_hooks.page`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, request

from registry_hooks import page
from registry_hooks.page import state

log = logging.getLogger(__name__)
WAKE_ENV = state.WAKE_ENV
ROUTES = {
    ("POST", "model-versions/transition-stage"): "transition",
    ("POST", "registered-models/alias"): "alias-set",
    ("DELETE", "registered-models/alias"): "alias-deleted",
}


def create_app(app: Flask | None = None) -> Any:
    app = _flask_app(app)
    app.after_request(_record_after)
    page.install(app)
    return _served(app)


def create_app_with_auth(app: Flask | None = None) -> Any:
    """Basic-auth and registry hooks together (the users are basic-auth's)."""
    from mlflow.server import auth

    app = _flask_app(app)
    app.after_request(_record_after)
    served = auth.create_app(app)
    page.install(app, auth=True)  # after basic-auth's own hooks: a request is signed in before the guard reads it
    return served


def _flask_app(app: Flask | None) -> Flask:
    if app is None:
        from mlflow.server import app as mlflow_app

        app = mlflow_app
    return app


def _served(app: Flask) -> Any:
    """Under uvicorn (MLflow's default) the Flask app is wrapped by MLflow's FastAPI app."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app


def event_of(method: str, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(kind, fields) when the request changed a stage or an alias, else None."""
    for (route_method, suffix), kind in ROUTES.items():
        if method == route_method and path.rstrip("/").endswith(f"/mlflow/{suffix}") and "/2.0/" in path:
            version = body.get("version")
            target = body.get("stage") if kind == "transition" else f"@{body.get('alias')}"
            version = str(version) if version is not None else None
            return kind, {"model": body.get("name"), "version": version, "target": target}
    return None


def _record_after(response: Any) -> Any:
    try:
        if response.status_code == 200:
            found = event_of(request.method, request.path, _body())
            if found is not None:
                kind, fields = found
                user = request.authorization.username if request.authorization else None
                state.pool.submit(_record, kind, fields, user)
    except Exception:  # never break the request
        log.exception("registry-hooks: could not read the request")
    return response


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True, force=True) if request.data else None
    if isinstance(body, dict):
        return body
    return dict(request.args)


def _record(kind: str, fields: dict[str, Any], user: str | None) -> None:
    try:
        state.hooks_store().record_event("app", kind, fields["model"], fields["version"], fields["target"], user)
    except Exception:
        log.exception("registry-hooks: could not record %s %s", kind, json.dumps(fields))
    state.wake_now()

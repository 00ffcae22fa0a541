"""The Deployments page, its JSON API, and a link to it in MLflow's UI.

``GET  /registry-hooks/deployments``            the page (plain HTML and JS, package data)
``GET  /registry-hooks/api/deployments``        every deployment the user may read (:mod:`.view`)
``GET  /registry-hooks/api/lineage?deployment=``  its lineage graph (:mod:`.lineage`)
``POST /registry-hooks/api/retry``              ``{"deployment": name}``: what ``hooks retry`` does

All under MLflow's ``--static-prefix`` when one is set. With basic-auth the routes need a signed-in
user; Retry needs EDIT or MANAGE on the registered model (or an admin), and the page lists only
the deployments of models the user may read. Retry only takes a JSON body, which a cross-site
form cannot send.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

from flask import Response, request

from registry_hooks.page import guard, lineage, view

PAGE = "/registry-hooks/deployments"
API = "/registry-hooks/api/deployments"
LINEAGE = "/registry-hooks/api/lineage"
RETRY = "/registry-hooks/api/retry"
ASSETS = {"/registry-hooks/deployments.js": "text/javascript", "/registry-hooks/deployments.css": "text/css"}
POLL_ENV = "MLFLOW_REGISTRY_HOOKS_PAGE_POLL_MS"
LINK = (
    '<a id="registry-hooks-link" href="registry-hooks/deployments" title="Registry hooks: status, history, retry" '
    'style="position:fixed;left:16px;bottom:88px;z-index:2000;padding:6px 12px;border-radius:4px;'
    'background:#2272b4;color:#fff;font:14px sans-serif;text-decoration:none">Deployments</a>'
)


def install(app: Any, auth: bool) -> None:
    from mlflow.server.handlers import _add_static_prefix

    routes = [(PAGE, "GET", _page), (API, "GET", _deployments), (LINEAGE, "GET", _lineage), (RETRY, "POST", _retry)]
    routes += [(path, "GET", _asset) for path in ASSETS]
    for path, method, handler in routes:
        app.add_url_rule(
            _add_static_prefix(path),
            endpoint=f"registry_hooks{path.replace('/', '_').replace('.', '_')}",
            view_func=handler,
            methods=[method],
        )
    app.after_request(_link_in_mlflow_ui)
    app.config["REGISTRY_HOOKS_AUTH"] = auth
    if auth:  # MLflow's fail-closed net refuses routes it has no validator for: signed-in users may open these
        from mlflow.server import auth as mlflow_auth

        for path, method, _ in routes:
            mlflow_auth.BEFORE_REQUEST_VALIDATORS[(_add_static_prefix(path), method)] = mlflow_auth._allow_authenticated


# ---- handlers ------------------------------------------------------------------------------------
def _page() -> Response:
    html = _static("deployments.html").replace("{{poll_ms}}", str(int(os.environ.get(POLL_ENV, "1000"))))
    return _no_cache(Response(html, mimetype="text/html"))


def _asset() -> Response:
    path = next(p for p in ASSETS if request.path.endswith(p))
    return _no_cache(Response(_static(path.rsplit("/", 1)[1]), mimetype=ASSETS[path]))


def _deployments() -> Response:
    from registry_hooks.page import state

    found = view.snapshot(state.hooks_store(), state.registry_store(), _permission())
    return _json(
        {"deployments": found, "user": _user(), "protection": guard.protection(), "tag_protection": _protection_text()}
    )


def _lineage() -> Response:
    name = request.args.get("deployment", "")
    entry = _find(name)
    if isinstance(entry, Response):
        return entry
    return _json({"deployment": name, **lineage.for_endpoint(entry["endpoint_arn"], name)})


def _retry() -> Response:
    from registry_hooks.page import state

    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict) or not isinstance(body.get("deployment"), str):
        return _error(
            400,
            "INVALID_PARAMETER_VALUE",
            'Retry takes a JSON body {"deployment": NAME} (Content-Type: '
            f"application/json); got {request.content_type or 'no content type'}. Use the Retry button, "
            "or `mlflow-sagemaker-ops hooks retry NAME`.",
        )
    entry = _find(body["deployment"], need="update")
    if isinstance(entry, Response):
        return entry
    store, name, user = state.hooks_store(), entry["name"], _user()
    if not store.retry(name):
        now = store.get(name).status
        return _error(
            409,
            "INVALID_STATE",
            f"Deployment {name!r} is {now}, not FAILED or ROLLED_BACK: nothing "
            "to retry. Only a FAILED or ROLLED_BACK deployment can be retried; the page shows its progress.",
        )
    store.log("retry", "asked", name, entry["desired_version"], "page:retry", user, "Retry on the Deployments page")
    state.wake_controllers()
    return _json(
        {
            "deployment": name,
            "status": "PENDING",
            "message": f"{name}: will be tried again (the controller was woken; else at its next poll)",
        }
    )


# ---- helpers -------------------------------------------------------------------------------------
def _find(name: str, need: str = "read") -> dict[str, Any] | Response:
    """The deployment's entry when it exists and the user may ``need`` it, else the error response."""
    from registry_hooks.page import state

    allowed = _permission()
    entries = {e["name"]: e for e in view.snapshot(state.hooks_store(), state.registry_store(), allowed, audit_limit=1)}
    if name not in entries:
        known = ", ".join(entries) or "none"
        return _error(
            404,
            "RESOURCE_DOES_NOT_EXIST",
            f"No deployment {name!r}. Deployments you can see: {known}. Pick one from the Deployments page.",
        )
    entry = entries[name]
    if need == "update" and not (allowed(entry["model"], "update") if entry["model"] else _is_admin()):
        return _error(
            403,
            "PERMISSION_DENIED",
            f"User {_user()!r} may not retry deployment {name!r}: that needs EDIT "
            f"or MANAGE on registered model {entry['model']!r}, or an admin. Ask the model's owner for EDIT, "
            "or an admin to retry it.",
        )
    return entry


def _permission() -> view.Permission:
    if not _auth_on():
        return lambda model, need: True
    from mlflow.server import auth as mlflow_auth

    admin = _is_admin()

    def allowed(model: str | None, need: str) -> bool:
        if admin:
            return True
        if model is None:
            return False
        found = mlflow_auth._get_registered_model_permission(model)
        return found.can_read if need == "read" else found.can_update

    return allowed


def _auth_on() -> bool:
    from flask import current_app

    return bool(current_app.config.get("REGISTRY_HOOKS_AUTH"))


def _is_admin() -> bool:
    if not _auth_on():
        return True
    from mlflow.server import auth as mlflow_auth

    return bool(mlflow_auth.sender_is_admin())


def _user() -> str | None:
    return request.authorization.username if request.authorization else None


def _protection_text() -> str:
    if guard.protection() == "all":
        return "deploy.* tags are the controller's: edits by anyone else are refused (403)."
    return (
        "deploy.* tags are the controller's: edits from the MLflow UI are refused (403); set "
        "MLFLOW_REGISTRY_HOOKS_CONTROLLER_TOKEN on the server and the controller to refuse other clients too."
    )


def _link_in_mlflow_ui(response: Response) -> Response:
    """A Deployments link on MLflow's own UI (its index.html, served at the root)."""
    if request.endpoint != "serve" or response.status_code != 200 or response.mimetype != "text/html":
        return response
    response.direct_passthrough = False
    html = response.get_data(as_text=True)
    if "</body>" in html and "registry-hooks-link" not in html:
        response.set_data(html.replace("</body>", LINK + "</body>", 1))
        for header in ("ETag", "Last-Modified"):
            response.headers.pop(header, None)
        _no_cache(response)
    return response


def _static(name: str) -> str:
    return resources.files("registry_hooks.page").joinpath("static", name).read_text(encoding="utf-8")


def _no_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-cache"
    return response


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return _no_cache(Response(json.dumps(body, default=str), status=status, mimetype="application/json"))


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error_code": code, "message": message}, status)


__all__ = ["API", "LINEAGE", "PAGE", "RETRY", "install"]

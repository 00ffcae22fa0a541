"""The ``deploy.*`` tags are the controller's: anyone else's set or delete of them is refused.

They say what is really deployed (``deploy.<d>.status``, ``.arn``, ``.message``, ``.time``,
``.lineage`` on a model version; ``deploy.<d>.version`` on the registered model), so an edit in
the UI or a script would make the registry say something false. Every REST route that writes a
model-version or registered-model tag is checked (set-tag, delete-tag, and create with tags),
under ``/api/`` and under ``/ajax-api/`` (what the UI calls):

* a request with the controller's token (:mod:`.token`) passes;
* with ``MLFLOW_REGISTRY_HOOKS_CONTROLLER_TOKEN`` set on the server, every other one gets 403;
* without it, the server cannot tell the controller from another REST client: the UI's writes
  (``/ajax-api/``) are refused, ``/api/`` ones pass, and the server says so once in its log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response, request

from registry_hooks.page import token

log = logging.getLogger(__name__)
PREFIX = "deploy."
ROUTES = {  # (method, route): the request names one tag (key) or creates an entity with tags
    ("POST", "model-versions/set-tag"): "key",
    ("DELETE", "model-versions/delete-tag"): "key",
    ("POST", "registered-models/set-tag"): "key",
    ("DELETE", "registered-models/delete-tag"): "key",
    ("POST", "model-versions/create"): "tags",
    ("POST", "registered-models/create"): "tags",
}


def install(app: Any) -> None:
    app.before_request(refuse_foreign_deploy_tags)
    if token.configured() is None:
        log.warning(
            "registry-hooks: %s is not set: deploy.* tag edits are refused from the MLflow UI only. Set the "
            "same token here and in the controller's environment to refuse them from every other client too.",
            token.TOKEN_ENV,
        )


def protection() -> str:
    """``all`` when every client but the controller is refused, ``ui`` when only the UI is."""
    return "all" if token.configured() else "ui"


def refuse_foreign_deploy_tags() -> Response | None:
    """Flask ``before_request``: None lets the request through."""
    field = _route_field(request.method, request.path)
    if field is None:
        return None
    key = next((k for k in _keys(field) if k.startswith(PREFIX)), None)
    if key is None or token.is_controller(request.headers.get(token.HEADER)):
        return None
    if token.configured() is None and "/ajax-api/" not in request.path:
        return None
    user = request.authorization.username if request.authorization else None
    log.warning(
        "registry-hooks: refused %s %s of tag %r (user %s): deploy.* tags are the controller's",
        request.method,
        request.path,
        key,
        user or "-",
    )
    return _forbidden(key)


def _route_field(method: str, path: str) -> str | None:
    if "/2.0/mlflow/" not in path:
        return None
    route = path.rstrip("/").split("/2.0/mlflow/", 1)[1]
    return ROUTES.get((method, route))


def _keys(field: str) -> list[str]:
    body = request.get_json(silent=True, force=True) if request.data else None
    if not isinstance(body, dict):
        body = request.args.to_dict()
    if field == "key":
        return [str(body.get("key", ""))]
    tags = body.get("tags")
    return [str(t.get("key", "")) for t in tags if isinstance(t, dict)] if isinstance(tags, list) else []


def _forbidden(key: str) -> Response:
    deployment = key[len(PREFIX) :].rsplit(".", 1)[0] or "<deployment>"
    from mlflow.server.handlers import _add_static_prefix

    page = f"{request.host_url.rstrip('/')}{_add_static_prefix('/registry-hooks/deployments')}"
    message = (
        f"Tag {key!r} is written only by the registry-hooks controller: the deploy.* tags report what is really "
        f"deployed, so they cannot be set or deleted by hand. Allowed: any tag key that does not start with "
        f"{PREFIX!r}. To deploy again, use Retry on the Deployments page ({page}) or run "
        f"`mlflow-sagemaker-ops hooks retry {deployment}`; to serve another version, change its stage or alias."
    )
    body = {"error_code": "PERMISSION_DENIED", "message": message}
    return Response(json.dumps(body), status=403, mimetype="application/json")


__all__ = ["PREFIX", "install", "protection", "refuse_foreign_deploy_tags"]

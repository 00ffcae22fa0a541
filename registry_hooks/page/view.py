"""The page's data: one entry per deployment, from the controller's state, the registry and the audit log.

* The controller's row (:mod:`registry_hooks.store`): the version it should serve, the version it
  serves, the status, the message, the time of the last change.
* The registry (:mod:`.tags`): every version that carries the deployment's ``deploy.<d>.*`` tags
  (so the model and each version's own status and message), and ``deploy.<d>.version`` on the
  registered model.
* The audit log: who and which event started each deploy, retry and delete.

A delete in progress is ``DELETING``: the row's status when the reconciler writes it, otherwise
read from the audit log (a ``delete`` that has ``started`` and no result yet).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from registry_hooks.page import tags
from registry_hooks.store import LEASE_ONLY, Store, deployments

RETRYABLE = ("FAILED", "ROLLED_BACK")
Permission = Callable[[str, str], bool]  # (registered model, "read" or "update") -> allowed


def snapshot(store: Store, registry: Any, allowed: Permission, audit_limit: int = 20) -> list[dict[str, Any]]:
    """Every deployment the user may read, in name order. ``registry``: MLflow's registry store."""
    with store.engine.connect() as db:
        query = sa.select(deployments).where(~deployments.c.name.contains(LEASE_ONLY)).order_by(deployments.c.name)
        rows = [dict(r) for r in db.execute(query).mappings()]
    index = tags.read(registry) or api_index(registry, [row["name"] for row in rows])
    found = []
    for row in rows:
        versions = index.versions(row["name"])
        model = versions[0]["model"] if versions else None
        if model is not None and not allowed(model, "read"):
            continue
        found.append(_entry(store, index, row, model, versions, allowed, audit_limit))
    return found


def tagged_versions(registry: Any, deployment: str) -> list[dict[str, Any]]:
    """The versions that carry ``deploy.<deployment>.*`` tags, newest first, through MLflow's API."""
    prefix = f"deploy.{deployment}."
    matches = registry.search_model_versions(f"tags.`{prefix}status` LIKE '%'", max_results=1000)
    return [
        tags.version_entry(
            mv.name,
            str(mv.version),
            mv.current_stage,
            sorted(getattr(mv, "aliases", None) or []),
            {k[len(prefix) :]: v for k, v in (mv.tags or {}).items() if k.startswith(prefix)},
        )
        for mv in sorted(matches, key=lambda v: (v.name, -int(v.version)))
    ]


def api_index(registry: Any, names: list[str]) -> tags.Index:
    """The index through MLflow's API (a registry store without SQL): one search per deployment."""
    versions = {name: tagged_versions(registry, name) for name in names}
    serving = {}
    for name, found in versions.items():
        if found:
            model = registry.get_registered_model(found[0]["model"])  # search results carry no aliases
            for entry in found:
                entry["aliases"] = sorted(a for a, v in (model.aliases or {}).items() if str(v) == entry["version"])
            value = (model.tags or {}).get(f"deploy.{name}.version")
            if value is not None:
                serving[(model.name, name)] = value
    return tags.Index(versions, serving)


def _entry(
    store: Store,
    index: tags.Index,
    row: dict[str, Any],
    model: str | None,
    versions: list[dict[str, Any]],
    allowed: Permission,
    audit_limit: int,
) -> dict[str, Any]:
    name = row["name"]
    audit = store.audit_log(name, audit_limit)
    status = "DELETING" if _deleting(row, audit) else row["status"]
    by_version = {v["version"]: v for v in versions}
    shown = by_version.get(row["desired_version"] or "") or by_version.get(row["serving_version"] or "") or {}
    return {
        "name": name,
        "model": model,
        "status": status,
        "desired_version": row["desired_version"],
        "serving_version": row["serving_version"],
        "registry_serving_version": index.serving(model, name),
        "message": row["message"] or shown.get("message"),
        "updated_at": _iso(row["updated_at"]),
        "attempts": row["attempts"],
        "deploys": row["deploys"],
        "endpoint_arn": _arn(versions, row),
        "links": {
            v: tags.version_link(model, v) for v in (row["desired_version"], row["serving_version"]) if model and v
        },
        "versions": versions,
        "audit": [_audit(a) for a in reversed(audit)],
        "drift": _drift(audit),
        "can_retry": status in RETRYABLE and model is not None and allowed(model, "update"),
    }


def _drift(audit: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The drift loop's latest monitor verdict among the entries read (a policy ``monitor`` section)."""
    last = next((a for a in reversed(audit) if a["action"] == "loop-monitor" and a["result"] != "failed"), None)
    if last is None:
        return None
    return {"verdict": last["result"], "version": last["version"], "at": _iso(last["at"]), "message": last["message"]}


def _deleting(row: dict[str, Any], audit: list[dict[str, Any]]) -> bool:
    if row["status"] == "DELETING":
        return True
    last = audit[-1] if audit else None
    return bool(last and last["action"] == "delete" and last["result"] == "started" and row["status"] != "DELETED")


def _arn(versions: list[dict[str, Any]], row: dict[str, Any]) -> str | None:
    """The endpoint's ARN, from the tags of the serving version (else any version that has one)."""
    ordered = sorted(versions, key=lambda v: v["version"] != row["serving_version"])
    return next((v["arn"] for v in ordered if v.get("arn")), None)


def _audit(entry: dict[str, Any]) -> dict[str, Any]:
    keep = ("action", "result", "version", "trigger", "actor", "message", "replica")
    return {"at": _iso(entry["at"]), **{k: entry[k] for k in keep}}


def _iso(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


__all__ = ["RETRYABLE", "Permission", "api_index", "snapshot", "tagged_versions"]

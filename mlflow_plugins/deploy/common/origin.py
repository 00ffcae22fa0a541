"""Where a deployed model comes from: registered model, version and run id, for resource tags.

``models:/name/3``, ``models:/name@alias`` and ``models:/name/Stage`` are resolved through the
Model Registry (so an alias or stage is recorded as the version it named at deploy time);
``runs:/<id>/...`` gives the run; any model directory gives the run recorded in its ``MLmodel``.
Values are made safe for AWS tag values (letters, digits, spaces and ``_.:/=+-@``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

_UNSAFE = re.compile(r"[^\w\s.:/=+\-@]", re.UNICODE)


@dataclass(frozen=True)
class ModelOrigin:
    registered_model: str | None = None
    version: str | None = None
    run_id: str | None = None

    def tags(self) -> dict[str, str]:
        values = {"registered-model": self.registered_model, "model-version": self.version, "run-id": self.run_id}
        return {f"mlflow-sagemaker-ops:{k}": _UNSAFE.sub("_", v)[:256] for k, v in values.items() if v}


def model_origin(model_uri: str, local_dir: str) -> ModelOrigin:
    run_id = _run_of(local_dir)
    if model_uri.startswith("runs:/"):
        return ModelOrigin(run_id=model_uri[len("runs:/") :].split("/", 1)[0] or run_id)
    if not model_uri.startswith("models:/"):
        return ModelOrigin(run_id=run_id)
    version = _registered_version(model_uri[len("models:/") :])
    if version is None:
        return ModelOrigin(run_id=run_id)
    return ModelOrigin(registered_model=version.name, version=str(version.version), run_id=version.run_id or run_id)


def _registered_version(path: str):
    """The ModelVersion that ``name/version``, ``name@alias`` or ``name/Stage`` names, or None
    for a logged-model id (``models:/m-...``), which no registered model holds."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if "@" in path:
        name, alias = path.rsplit("@", 1)
        return client.get_model_version_by_alias(name, alias)
    name, _, ref = path.rpartition("/")
    if not name:
        return None
    if ref.isdigit():
        return client.get_model_version(name, ref)
    found = client.get_latest_versions(name, stages=[ref] if ref.lower() != "latest" else None)
    return max(found, key=lambda v: int(v.version)) if found else None


def _run_of(local_dir: str) -> str | None:
    mlmodel = Path(local_dir) / "MLmodel"
    try:
        return (yaml.safe_load(mlmodel.read_text()) or {}).get("run_id")
    except (OSError, yaml.YAMLError):
        return None

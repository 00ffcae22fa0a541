"""Lineage: MLflow runs, datasets, model versions and deployments mirrored into SageMaker ML
Lineage Tracking (:mod:`.sync`), and read back with ``QueryLineage`` (:mod:`.show`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def after_deploy(sagemaker: Any, origin: Any, resource_arn: str, target: str, archive: str | None,
                 say: Callable[[str], None]) -> str | None:
    """Mirror a deployed registered model version; a failure is reported, never raised (a
    lineage failure must not fail a deployment). The message, or None when it worked or there
    was nothing to record (a model that is not a registered version)."""
    if not (getattr(origin, "registered_model", None) and getattr(origin, "version", None)):
        return None
    from mlflow_plugins.lineage.sync import LineageSync

    try:
        sync = LineageSync(sagemaker)
        try:
            sync.sync_version(origin.registered_model, origin.version, deployed=(resource_arn, target, archive))
        finally:
            sync.writer.close()
    except Exception as error:  # noqa: BLE001 - reported, and `lineage sync` finishes it later
        message = (f"lineage for {origin.registered_model}/{origin.version} was not written ({type(error).__name__}: {error}); "
                   f"run `mlflow-sagemaker-ops lineage sync --model {origin.registered_model} --version {origin.version}`")
        say(f"Warning: {message}")
        return message
    return None


def after_target_deploy(clients: Any, deployed: dict[str, Any], target: str, say: Callable[[str], None]) -> str | None:
    """:func:`after_deploy` for what a deployment target's ``get`` returned."""
    from mlflow_plugins.deploy._origin import ModelOrigin

    arn = deployed.get("endpoint_arn") or deployed.get("service_arn")
    if not arn or deployed.get("status") not in ("InService", "ACTIVE"):
        return None
    origin = ModelOrigin(deployed.get("registered_model"), deployed.get("model_version"))
    return after_deploy(clients("sagemaker"), origin, arn, target, deployed.get("model_s3_uri"), say)

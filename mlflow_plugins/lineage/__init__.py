"""Lineage: MLflow runs, datasets, model versions and deployments mirrored into SageMaker ML
Lineage Tracking (:mod:`.sync`), and read back with ``QueryLineage`` (:mod:`.show`).

:func:`after_deploy` is the one lineage step after a deploy, for both front doors (the MLflow
deployment clients and the registry hooks) and every target. Lineage never imports the
deployment targets; the front doors call it with what a target reported.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("mlflow_plugins.lineage")


def after_deploy(
    sagemaker: Any,
    registered_model: str | None,
    version: str | None,
    resource_arn: str | None,
    target: str,
    archive: str | None,
    tracking_client: Any = None,
) -> str | None:
    """Mirror a deployed registered model version. A failure is returned, never raised (a
    lineage failure must not fail a deployment): the message, or None when it worked or there
    was nothing to record (a model that is not a registered version)."""
    if not (registered_model and version and resource_arn):
        return None
    from mlflow_plugins.lineage.sync import LineageSync

    try:
        sync = LineageSync(sagemaker, tracking_client) if tracking_client is not None else LineageSync(sagemaker)
        try:
            sync.sync_version(registered_model, version, deployed=(resource_arn, target, archive))
        finally:
            sync.writer.close()
    except Exception as error:  # noqa: BLE001 - reported, and `lineage sync` (or the next pass) finishes it
        message = (
            f"lineage for {registered_model}/{version} was not written ({type(error).__name__}: {error}); "
            f"run `mlflow-sagemaker-ops lineage sync --model {registered_model} --version {version}`"
        )
        log.warning("%s", message)
        return message
    return None


def after_target_deploy(clients: Any, deployed: dict[str, Any], target: str) -> str | None:
    """:func:`after_deploy` for what a deployment target's ``create``/``update`` returned."""
    arn = deployed.get("endpoint_arn") or deployed.get("service_arn")
    if deployed.get("status") not in ("InService", "ACTIVE"):
        return None
    return after_deploy(
        clients("sagemaker"),
        deployed.get("registered_model"),
        deployed.get("model_version"),
        arn,
        target,
        deployed.get("model_s3_uri"),
    )

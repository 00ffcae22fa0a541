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
    was nothing to record (a model that is not a registered version). The failure is returned as
    ``<exception type>: <message>``, and logged with the command that finishes it."""
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
        reason = f"{type(error).__name__}: {error}"
        log.warning(
            "lineage for %s/%s was not written (%s); run `mlflow-sagemaker-ops lineage sync --model %s --version %s`",
            registered_model,
            version,
            reason,
            registered_model,
            version,
        )
        return reason
    return None


def after_target_deploy(clients: Any, deployed: dict[str, Any], target: str) -> str | None:
    """:func:`after_deploy` for what a deployment target's ``create``/``update`` returned."""
    arn = deployed.get("endpoint_arn") or deployed.get("service_arn")
    if deployed.get("status") not in ("InService", "ACTIVE"):
        return None
    model, version = deployed.get("registered_model"), deployed.get("model_version")
    reason = after_deploy(clients("sagemaker"), model, version, arn, target, deployed.get("model_s3_uri"))
    if reason is None:
        return None
    return f"not written ({reason}); run `mlflow-sagemaker-ops lineage sync --model {model} --version {version}`"


def after_transform(
    sagemaker: Any, registered_model: str | None, version: str | None, job_arn: str, input_uri: str, output_uri: str
) -> str | None:
    """Mirror a batch transform job of a registered model version; a failure is returned (and
    logged), never raised, as in :func:`after_deploy`."""
    if not (registered_model and version):
        return None
    from mlflow_plugins.lineage.sync import LineageSync

    try:
        sync = LineageSync(sagemaker)
        try:
            sync.record_transform(registered_model, version, job_arn, input_uri, output_uri)
        finally:
            sync.writer.close()
    except Exception as error:  # noqa: BLE001 - reported; the job's outputs are there either way
        reason = f"{type(error).__name__}: {error}"
        log.warning("lineage of transform job %s was not written (%s)", job_arn, reason)
        return reason
    return None

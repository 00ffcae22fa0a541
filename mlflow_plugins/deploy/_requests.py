"""The SageMaker requests a deployment sends: names, tags, the variant and the DeploymentConfig."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import mlflow_plugins

MANAGED = "mlflow-sagemaker-ops:managed"


def deployment_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The UpdateEndpoint DeploymentConfig for the configured strategy and alarms."""
    strategy, bake = cfg["strategy"], cfg["bake_seconds"]
    if strategy == "rolling":
        policy: dict[str, Any] = {"RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": cfg["linear_step_size"]},
            "WaitIntervalInSeconds": bake}}
        inner = policy["RollingUpdatePolicy"]
    else:
        routing: dict[str, Any] = {"Type": {"canary": "CANARY", "linear": "LINEAR"}.get(strategy, "ALL_AT_ONCE"),
                                   "WaitIntervalInSeconds": bake}
        if strategy == "canary":
            routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": cfg["canary_size"]}
        if strategy == "linear":
            routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": cfg["linear_step_size"]}
        policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing,
                                            "TerminationWaitInSeconds": cfg["termination_wait_seconds"]}}
        inner = policy["BlueGreenUpdatePolicy"]
    if cfg["max_execution_seconds"]:
        inner["MaximumExecutionTimeoutInSeconds"] = cfg["max_execution_seconds"]
    if cfg["alarms"]:
        policy["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in cfg["alarms"]]}
    return policy


def variant(model_name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": cfg["variant_name"], "ModelName": model_name, "InitialVariantWeight": 1.0}
    if cfg["serverless_config"]:
        variant["ServerlessConfig"] = cfg["serverless_config"]
    else:
        variant.update(InstanceType=cfg["instance_type"], InitialInstanceCount=cfg["instance_count"])
    return variant


def resource_tags(cfg: dict[str, Any], model: Any, model_uri: str, deployment: str) -> list[dict[str, str]]:
    values = {MANAGED: "true", "mlflow-sagemaker-ops:deployment-id": deployment,
            "mlflow-sagemaker-ops:model-uri": model_uri[:256], "mlflow-sagemaker-ops:model-digest": model.digest[:64],
            "mlflow-sagemaker-ops:version": mlflow_plugins.__version__}
    values.update({str(k): str(v) for k, v in (cfg["tags"] or {}).items()})
    return [{"Key": k, "Value": v} for k, v in values.items()]


def resource_name(name: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"{name[:40]}-{stamp}-{uuid.uuid4().hex[:6]}"

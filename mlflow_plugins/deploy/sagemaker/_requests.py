"""The SageMaker requests a deployment sends: names, tags, the variant and the DeploymentConfig."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.labels import MANAGED
from mlflow_plugins.deploy.common.origin import ModelOrigin
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig

__all__ = ["MANAGED", "deployment_config", "layout", "models_in", "resource_name", "resource_tags", "variant"]


def deployment_config(cfg: SageMakerConfig) -> dict[str, Any]:
    """The UpdateEndpoint DeploymentConfig for the configured strategy and alarms."""
    strategy, bake = cfg.strategy, cfg.bake_seconds
    if strategy == "rolling":
        policy: dict[str, Any] = {
            "RollingUpdatePolicy": {
                "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": cfg.linear_step_size},
                "WaitIntervalInSeconds": bake,
            }
        }
        inner = policy["RollingUpdatePolicy"]
    else:
        routing: dict[str, Any] = {
            "Type": {"canary": "CANARY", "linear": "LINEAR"}.get(strategy, "ALL_AT_ONCE"),
            "WaitIntervalInSeconds": bake,
        }
        if strategy == "canary":
            routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": cfg.canary_size}
        if strategy == "linear":
            routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": cfg.linear_step_size}
        policy = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": cfg.termination_wait_seconds,
            }
        }
        inner = policy["BlueGreenUpdatePolicy"]
    if cfg.max_execution_seconds:
        inner["MaximumExecutionTimeoutInSeconds"] = cfg.max_execution_seconds
    if cfg.alarms:
        policy["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in cfg.alarms]}
    return policy


def shadow_variant(model_name: str, cfg: SageMakerConfig) -> dict[str, Any]:
    """The shadow variant: its weight relative to the production variant's 1.0 is the share of
    requests SageMaker copies to it."""
    return {
        **variant(model_name, cfg),
        "VariantName": shadow_name(cfg.variant_name),
        "InitialVariantWeight": cfg.shadow_sampling_percent / 100,
    }


def shadow_name(variant_name: str) -> str:
    return f"{variant_name[:56]}-shadow"


def variant(model_name: str, cfg: SageMakerConfig) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": cfg.variant_name, "ModelName": model_name, "InitialVariantWeight": 1.0}
    if cfg.serverless_config:
        variant["ServerlessConfig"] = cfg.serverless_config
    else:
        variant.update(InstanceType=cfg.instance_type, InitialInstanceCount=cfg.instance_count)
    return variant


def resource_tags(
    cfg: SageMakerConfig, model: Any, model_uri: str, deployment: str, origin: ModelOrigin | None = None
) -> list[dict[str, str]]:
    """The suite's tags (managed marker, deployment id, model URI and digest, registered model,
    version and run id, suite version), then the user's ``tags``."""
    values = suite_labels.with_user_tags(suite_labels.suite_tags(model_uri, model.digest, origin, deployment), cfg.tags)
    return [{"Key": k, "Value": v} for k, v in values.items()]


def resource_name(name: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"{name[:40]}-{stamp}-{uuid.uuid4().hex[:6]}"


def layout(
    model_name: str, cfg: SageMakerConfig, live: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Production and shadow variants of a new config: the new model alone (create, replace); the
    live production model with the new one in shadow (``strategy=shadow``); or the live variants
    with the new one added (``mode=add``, as MLflow's own client does it)."""
    if live is not None and cfg.strategy == "shadow":
        return [variant(live["ProductionVariants"][0]["ModelName"], cfg)], [shadow_variant(model_name, cfg)]
    if live is not None and cfg.mode == "add":
        return [*live["ProductionVariants"], variant(model_name, cfg)], []
    return [variant(model_name, cfg)], []


def models_in(config: dict[str, Any] | None) -> list[str]:
    """The SageMaker models an endpoint config serves, production and shadow."""
    variants = (config or {}).get("ProductionVariants", []) + (config or {}).get("ShadowProductionVariants", [])
    return list(dict.fromkeys(v["ModelName"] for v in variants if v.get("ModelName")))

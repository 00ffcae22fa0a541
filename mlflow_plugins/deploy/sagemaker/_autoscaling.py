"""Autoscaling of a SageMaker variant with Application Auto Scaling: a target-tracking policy
(invocations per instance by default, or another predefined metric), cooldowns and scheduled
actions. It is registered on the stable variant, so it survives updates, and removed on delete.

The ``autoscaling`` config value:
``{"min_capacity": 1, "max_capacity": 4, "target": 100, "metric": "SageMakerVariantInvocationsPerInstance",
"scale_in_cooldown": 300, "scale_out_cooldown": 60, "schedule": [{"name": "night", "cron": "cron(0 20 * * ? *)",
"min_capacity": 1, "max_capacity": 1}]}``
"""

from __future__ import annotations

from typing import Any

from mlflow_plugins.deploy.common.scaling import ScalableTarget, track
from mlflow_plugins.errors import InvalidValue

NAMESPACE, DIMENSION = "sagemaker", "sagemaker:variant:DesiredInstanceCount"
METRICS = (
    "SageMakerVariantInvocationsPerInstance",
    "SageMakerVariantProvisionedConcurrencyUtilization",
    "SageMakerInferenceComponentInvocationsPerCopy",
)
KEYS = ("min_capacity", "max_capacity", "target", "metric", "scale_in_cooldown", "scale_out_cooldown", "schedule")
EXAMPLE = '{"min_capacity": 1, "max_capacity": 4, "target": 100}'


def validate(spec: Any) -> dict[str, Any]:
    def bad(value: Any, reason: str, allowed: str) -> InvalidValue:
        return InvalidValue(
            name="autoscaling", value=value, reason=reason, allowed=allowed, fix=f"Pass -C autoscaling='{EXAMPLE}'."
        )

    if not isinstance(spec, dict):
        raise bad(spec, "it is not a JSON object", "a JSON object")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise bad(spec, f"unknown key(s) {unknown}", ", ".join(KEYS))
    for key in ("min_capacity", "max_capacity", "target"):
        if (
            not isinstance(spec.get(key), (int, float))
            or isinstance(spec.get(key), bool)
            or spec[key] < (1 if key != "target" else 0)
        ):
            raise bad(
                spec, f"{key} is missing or not a positive number", "min_capacity, max_capacity and target as numbers"
            )
    if spec["min_capacity"] > spec["max_capacity"]:
        raise bad(spec, "min_capacity is above max_capacity", "min_capacity <= max_capacity")
    if spec.get("metric", METRICS[0]) not in METRICS:
        raise bad(spec, f"metric {spec['metric']!r} is not a predefined SageMaker metric", ", ".join(METRICS))
    for action in spec.get("schedule", []):
        if not isinstance(action, dict) or not {"name", "cron"} <= set(action):
            raise bad(
                spec,
                "a schedule entry needs name and cron",
                '[{"name": "night", "cron": "cron(0 20 * * ? *)", "max_capacity": 1}]',
            )
    return spec


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def apply(scaling: Any, endpoint: str, variant: str, spec: dict[str, Any]) -> None:
    resource = resource_id(endpoint, variant)
    metric = {"PredefinedMetricType": spec.get("metric", METRICS[0])}
    track(
        scaling, ScalableTarget(NAMESPACE, resource, DIMENSION), spec, metric, f"{endpoint}-{variant}-target-tracking"
    )
    wanted = {action["name"] for action in spec.get("schedule", [])}
    live = scaling.describe_scheduled_actions(ServiceNamespace=NAMESPACE, ResourceId=resource)["ScheduledActions"]
    for action in live:  # a schedule the spec no longer has goes
        if action["ScheduledActionName"] not in wanted and action["ScalableDimension"] == DIMENSION:
            scaling.delete_scheduled_action(
                ServiceNamespace=NAMESPACE,
                ScheduledActionName=action["ScheduledActionName"],
                ResourceId=resource,
                ScalableDimension=DIMENSION,
            )
    for action in spec.get("schedule", []):
        capacity = {
            k: int(action[s])
            for k, s in (("MinCapacity", "min_capacity"), ("MaxCapacity", "max_capacity"))
            if s in action
        }
        scaling.put_scheduled_action(
            ServiceNamespace=NAMESPACE,
            ScheduledActionName=action["name"],
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            Schedule=action["cron"],
            ScalableTargetAction=capacity,
        )


def registered(scaling: Any, endpoint: str, variant: str) -> dict[str, Any] | None:
    found = scaling.describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ResourceIds=[resource_id(endpoint, variant)], ScalableDimension=DIMENSION
    )["ScalableTargets"]
    return found[0] if found else None


def remove(scaling: Any, endpoint: str, variant: str) -> None:
    if registered(scaling, endpoint, variant) is not None:
        scaling.deregister_scalable_target(
            ServiceNamespace=NAMESPACE, ResourceId=resource_id(endpoint, variant), ScalableDimension=DIMENSION
        )

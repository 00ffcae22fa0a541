"""Target tracking with Application Auto Scaling, for any scalable target (a SageMaker variant's
instance count, an ECS service's desired count): register the range, then one target-tracking
policy on a predefined metric with the spec's cooldowns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScalableTarget:
    namespace: str  # sagemaker | ecs
    resource_id: str  # endpoint/E/variant/V | service/C/S
    dimension: str  # sagemaker:variant:DesiredInstanceCount | ecs:service:DesiredCount


def track(scaling: Any, target: ScalableTarget, spec: dict[str, Any], metric: dict[str, Any], policy_name: str) -> None:
    """Register ``target`` with the spec's min and max capacity and put a target-tracking policy on
    ``metric`` (a PredefinedMetricSpecification) at the spec's target value."""
    where = {
        "ServiceNamespace": target.namespace,
        "ResourceId": target.resource_id,
        "ScalableDimension": target.dimension,
    }
    scaling.register_scalable_target(
        **where, MinCapacity=int(spec["min_capacity"]), MaxCapacity=int(spec["max_capacity"])
    )
    tracking: dict[str, Any] = {"TargetValue": float(spec["target"]), "PredefinedMetricSpecification": metric}
    for key, field in (("scale_in_cooldown", "ScaleInCooldown"), ("scale_out_cooldown", "ScaleOutCooldown")):
        if key in spec:
            tracking[field] = int(spec[key])
    scaling.put_scaling_policy(
        PolicyName=policy_name,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=tracking,
        **where,
    )


def read_spec(scaling: Any, target: dict[str, Any]) -> dict[str, Any]:
    """A registered scalable target (DescribeScalableTargets' entry) as an ``autoscaling`` config
    value: its range, its target-tracking policy and its scheduled actions (for a plan)."""
    where = {k: target[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    spec: dict[str, Any] = {"min_capacity": target["MinCapacity"], "max_capacity": target["MaxCapacity"]}
    for policy in scaling.describe_scaling_policies(**where)["ScalingPolicies"]:
        tracking = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
        spec["target"] = tracking.get("TargetValue")
        spec["metric"] = (tracking.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
        for key, field in (("scale_in_cooldown", "ScaleInCooldown"), ("scale_out_cooldown", "ScaleOutCooldown")):
            if field in tracking:
                spec[key] = tracking[field]
    actions = scaling.describe_scheduled_actions(
        ServiceNamespace=where["ServiceNamespace"], ResourceId=where["ResourceId"]
    )["ScheduledActions"]
    spec["schedule"] = sorted(
        (
            a["ScheduledActionName"],
            a["Schedule"],
            (a.get("ScalableTargetAction") or {}).get("MinCapacity"),
            (a.get("ScalableTargetAction") or {}).get("MaxCapacity"),
        )
        for a in actions
    )
    return spec


def wanted_spec(spec: dict[str, Any], default_metric: str) -> dict[str, Any]:
    """A configured ``autoscaling`` value as :func:`read_spec` reads one back after :func:`track`."""
    wanted = {
        "min_capacity": int(spec["min_capacity"]),
        "max_capacity": int(spec["max_capacity"]),
        "target": float(spec["target"]),
        "metric": spec.get("metric", default_metric),
        "schedule": sorted(
            (a["name"], a["cron"], _int_or_none(a.get("min_capacity")), _int_or_none(a.get("max_capacity")))
            for a in spec.get("schedule", [])
        ),
    }
    wanted.update({key: int(spec[key]) for key in ("scale_in_cooldown", "scale_out_cooldown") if key in spec})
    return wanted


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)

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

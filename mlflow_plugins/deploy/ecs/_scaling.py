"""Autoscaling of an ECS service's desired count with Application Auto Scaling: one
target-tracking policy on a predefined metric (``ECSServiceAverageCPUUtilization``,
``ECSServiceAverageMemoryUtilization``, or ``ALBRequestCountPerTarget`` with the target group's
``ResourceLabel``). ``autoscaling`` absent from the config removes it."""

from __future__ import annotations

from typing import Any

from mlflow_plugins.deploy.common.scaling import ScalableTarget, track
from mlflow_plugins.deploy.ecs.config import METRICS, EcsConfig

NAMESPACE, DIMENSION = "ecs", "ecs:service:DesiredCount"


def resource_id(cluster: str, name: str) -> str:
    return f"service/{cluster}/{name}"


def apply(clients: Any, cluster: str, name: str, cfg: EcsConfig) -> None:
    scaling = clients("application-autoscaling")
    resource = resource_id(cluster, name)
    spec = cfg.autoscaling
    if spec is None:
        remove(clients, cluster, name)
        return
    metric: dict[str, Any] = {"PredefinedMetricType": spec.get("metric", METRICS[0])}
    if metric["PredefinedMetricType"] == "ALBRequestCountPerTarget" and cfg.target_group_arn:
        metric["ResourceLabel"] = resource_label(clients("elbv2"), cfg.target_group_arn)
    track(scaling, ScalableTarget(NAMESPACE, resource, DIMENSION), spec, metric, f"{name}-target-tracking")


def resource_label(elbv2: Any, target_group_arn: str) -> str:
    """``app/<lb name>/<lb id>/targetgroup/<tg name>/<tg id>``, as Application Auto Scaling wants it."""
    group = elbv2.describe_target_groups(TargetGroupArns=[target_group_arn])["TargetGroups"][0]
    balancer = group["LoadBalancerArns"][0].split(":loadbalancer/", 1)[1]
    return f"{balancer}/{target_group_arn.split(':', 5)[5]}"


def registered(clients: Any, cluster: str, name: str) -> dict[str, Any] | None:
    found = clients("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ResourceIds=[resource_id(cluster, name)]
    )["ScalableTargets"]
    return found[0] if found else None


def registered_for(clients: Any, name: str) -> list[str]:
    """The resource IDs (``service/CLUSTER/NAME``) of every cluster's scalable target for ``name``."""
    pages = (
        clients("application-autoscaling")
        .get_paginator("describe_scalable_targets")
        .paginate(ServiceNamespace=NAMESPACE)
    )
    return [
        t["ResourceId"]
        for page in pages
        for t in page["ScalableTargets"]
        if t["ScalableDimension"] == DIMENSION and t["ResourceId"].split("/")[-1] == name
    ]


def remove(clients: Any, cluster: str, name: str) -> None:
    """Deregistering the scalable target deletes its policies too."""
    if registered(clients, cluster, name) is not None:
        clients("application-autoscaling").deregister_scalable_target(
            ServiceNamespace=NAMESPACE, ResourceId=resource_id(cluster, name), ScalableDimension=DIMENSION
        )

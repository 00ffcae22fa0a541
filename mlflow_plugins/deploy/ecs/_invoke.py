"""Reaching an ECS service for ``predict``: through its load balancer (DNS name and the listener
that forwards to its target group), or at a running task's private IP and container port, which
answers from inside the VPC (and in the sandbox, where each task has a loopback address)."""

from __future__ import annotations

import random
from typing import Any

from mlflow_plugins.errors import AwsCallFailed, InvalidValue, ResourceNotFound

VIAS = ("load_balancer", "task")


def invoke(
    ecs: Any, elbv2: Any, cluster: str, service: dict[str, Any], body: bytes, content_type: str, via: str | None = None
) -> bytes:
    import requests

    url = address(ecs, elbv2, cluster, service, via)
    try:
        reply = requests.post(url + "/invocations", data=body, headers={"Content-Type": content_type}, timeout=60)
    except requests.RequestException as error:
        raise AwsCallFailed(
            operation=f"POST {url}/invocations",
            code=type(error).__name__,
            detail=str(error),
            fix="The address is reachable from inside the VPC; run predict there, or use the load balancer.",
        ) from None
    if reply.status_code != 200:
        raise AwsCallFailed(
            operation=f"POST {url}/invocations",
            code=str(reply.status_code),
            detail=reply.text[:2000],
            fix="See the model's message above.",
        )
    return reply.content


def address(ecs: Any, elbv2: Any, cluster: str, service: dict[str, Any], via: str | None = None) -> str:
    """``http(s)://host:port`` of the service: its load balancer, or a running task."""
    balancers = service.get("loadBalancers") or []
    via = via or ("load_balancer" if balancers else "task")
    if via not in VIAS:
        raise InvalidValue(
            name="via",
            value=via,
            reason="predict reaches the service one of two ways",
            allowed=", ".join(VIAS),
            fix="Pass params={'via': 'task'} or leave it out.",
        )
    if via == "load_balancer":
        if not balancers:
            raise InvalidValue(
                name="via",
                value=via,
                reason="the service has no load balancer",
                allowed="task",
                fix="Leave via out, or create the service with -C target_group_arn=....",
            )
        return _balancer_address(elbv2, balancers[0]["targetGroupArn"])
    arns = ecs.list_tasks(cluster=cluster, serviceName=service["serviceName"], desiredStatus="RUNNING")["taskArns"]
    tasks = (
        [t for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if t.get("lastStatus") == "RUNNING"]
        if arns
        else []
    )
    if not tasks:
        raise ResourceNotFound(
            kind="running task of ECS service",
            name=f"{cluster}/{service['serviceName']}",
            fix="Wait for the deployment (`mlflow deployments get -t ecs`) or scale the service up.",
        )
    task = random.choice(tasks)
    details = {d["name"]: d["value"] for a in task.get("attachments") or [] for d in a.get("details") or []}
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    port = definition["containerDefinitions"][0]["portMappings"][0]["containerPort"]
    return f"http://{details['privateIPv4Address']}:{port}"


def _balancer_address(elbv2: Any, target_group_arn: str) -> str:
    group = elbv2.describe_target_groups(TargetGroupArns=[target_group_arn])["TargetGroups"][0]
    balancer_arn = group["LoadBalancerArns"][0]
    balancer = elbv2.describe_load_balancers(LoadBalancerArns=[balancer_arn])["LoadBalancers"][0]
    listeners = elbv2.describe_listeners(LoadBalancerArn=balancer_arn)["Listeners"]
    default: dict[str, Any] = listeners[0] if listeners else {"Protocol": "HTTP", "Port": 80}
    listener: dict[str, Any] = next(
        (
            found
            for found in listeners
            if any(a.get("TargetGroupArn") == target_group_arn for a in found.get("DefaultActions", []))
        ),
        default,
    )
    return f"{listener['Protocol'].lower()}://{balancer['DNSName']}:{listener['Port']}"

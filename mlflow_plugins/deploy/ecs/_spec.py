"""What an ECS deployment sends: the task definition and the service settings, built from the
parsed ``-t ecs`` config, and the config read back from a live service (so an update carries
every setting over that it does not change).

The container runs the suite's image (entry point ``mlflow-sagemaker-ops``) with
``serve --model-uri s3://...``: the runtime's ECS mode fetches the model once at start. Its
health check is ``GET /ping`` from inside the container, with Python (the image has no curl).
"""

from __future__ import annotations

from typing import Any

from mlflow_plugins.deploy.common import labels
from mlflow_plugins.deploy.ecs.config import RESERVED_ENV, EcsConfig

CONTAINER = "model"
STREAM_PREFIX = "mlflow"
MANAGED = "mlflow-sagemaker-ops:managed"
MODEL_URI_TAG = labels.MODEL_URI
_PING = "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/ping', timeout=4)"


def default_log_group(cluster: str, name: str) -> str:
    return f"/mlflow-sagemaker-ops/ecs/{cluster}/{name}"


def task_definition(
    name: str, cfg: EcsConfig, image: str, model_s3_uri: str, region: str, tags: list[dict[str, str]]
) -> dict[str, Any]:
    port = cfg.container_port
    env = {str(k): str(v) for k, v in (cfg.env or {}).items()}
    env["SAGEMAKER_BIND_TO_PORT"] = str(port)
    container = {
        "name": CONTAINER,
        "image": image,
        "essential": True,
        "command": ["serve", "--model-uri", model_s3_uri],
        "portMappings": [{"containerPort": port, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "healthCheck": {
            "command": ["CMD", "python", "-c", _PING.format(port=port)],
            "interval": 15,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 60,
        },
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": cfg.log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": STREAM_PREFIX,
            },
        },
    }
    return {
        "family": name,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(cfg.cpu),
        "memory": str(cfg.memory),
        "executionRoleArn": cfg.execution_role_arn,
        "taskRoleArn": cfg.task_role_arn,
        "containerDefinitions": [container],
        "tags": tags,
    }


def network(cfg: EcsConfig) -> dict[str, Any]:
    awsvpc: dict[str, Any] = {
        "subnets": cfg.subnets,
        "assignPublicIp": "ENABLED" if cfg.assign_public_ip else "DISABLED",
    }
    if cfg.security_groups:
        awsvpc["securityGroups"] = cfg.security_groups
    return {"awsvpcConfiguration": awsvpc}


def deployment_configuration(cfg: EcsConfig) -> dict[str, Any]:
    return {
        "deploymentCircuitBreaker": {"enable": cfg.circuit_breaker, "rollback": cfg.rollback},
        "maximumPercent": cfg.maximum_percent,
        "minimumHealthyPercent": cfg.minimum_healthy_percent,
    }


def service_settings(cfg: EcsConfig) -> dict[str, Any]:
    """The settings CreateService and UpdateService share."""
    settings: dict[str, Any] = {
        "desiredCount": cfg.desired_count,
        "networkConfiguration": network(cfg),
        "deploymentConfiguration": deployment_configuration(cfg),
    }
    if cfg.target_group_arn:
        settings["loadBalancers"] = [
            {"targetGroupArn": cfg.target_group_arn, "containerName": CONTAINER, "containerPort": cfg.container_port}
        ]
        if cfg.health_check_grace_seconds is not None:
            settings["healthCheckGracePeriodSeconds"] = cfg.health_check_grace_seconds
    return settings


def model_uri_of(definition: dict[str, Any]) -> str:
    """The S3 URI of the model a task definition serves."""
    command = definition["containerDefinitions"][0].get("command") or []
    return command[command.index("--model-uri") + 1] if "--model-uri" in command else ""


def same_task(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two task definitions run the same thing (tags aside): no new revision is needed."""
    keys = ("networkMode", "cpu", "memory", "executionRoleArn", "taskRoleArn")
    fields = ("image", "command", "portMappings", "environment", "logConfiguration")
    first, second = a["containerDefinitions"][0], b["containerDefinitions"][0]
    return (
        all(a.get(k) == b.get(k) for k in keys)
        and all(first.get(f) == second.get(f) for f in fields if f != "environment")
        and sorted((e["name"], e["value"]) for e in first.get("environment") or [])
        == sorted((e["name"], e["value"]) for e in second.get("environment") or [])
    )


def live_config(service: dict[str, Any], definition: dict[str, Any], user_tags: dict[str, str]) -> dict[str, Any]:
    """The ``-t ecs`` config that a live service and its task definition were deployed with."""
    container = definition["containerDefinitions"][0]
    awsvpc = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    deployment = service.get("deploymentConfiguration") or {}
    balancers = service.get("loadBalancers") or []
    env = {e["name"]: e["value"] for e in container.get("environment") or [] if e["name"] not in RESERVED_ENV}
    config: dict[str, Any] = {
        "cluster": service["clusterArn"].split("/")[-1],
        "subnets": awsvpc.get("subnets") or None,
        "security_groups": awsvpc.get("securityGroups") or None,
        "assign_public_ip": awsvpc.get("assignPublicIp") == "ENABLED",
        "cpu": str(definition["cpu"]),
        "memory": int(definition["memory"]),
        "desired_count": service["desiredCount"],
        "image": container["image"],
        "execution_role_arn": definition.get("executionRoleArn"),
        "task_role_arn": definition.get("taskRoleArn"),
        "target_group_arn": balancers[0]["targetGroupArn"] if balancers else None,
        "container_port": (container.get("portMappings") or [{"containerPort": 8080}])[0]["containerPort"],
        "env": env or None,
        "circuit_breaker": bool(breaker.get("enable")),
        "rollback": bool(breaker.get("rollback")),
        "minimum_healthy_percent": deployment.get("minimumHealthyPercent", 100),
        "maximum_percent": deployment.get("maximumPercent", 200),
        "log_group": ((container.get("logConfiguration") or {}).get("options") or {}).get("awslogs-group"),
        "tags": user_tags or None,
    }
    if model_uri_of(definition).startswith("s3://"):
        config["bucket"] = model_uri_of(definition)[len("s3://") :].split("/", 1)[0]
    if balancers and service.get("healthCheckGracePeriodSeconds") is not None:
        config["health_check_grace_seconds"] = service["healthCheckGracePeriodSeconds"]
    return config

"""The ``-t ecs`` configuration keys, validated before any AWS call like the SageMaker keys.

Fargate's rules are checked here: the task sizes AWS accepts (cpu and memory together), the
deployment percentages a rolling update can move with, that rollback needs the circuit breaker,
and that a load-balancer setting (grace period, ``ALBRequestCountPerTarget``) needs a target group.
Sources: the ECS Developer Guide ("Task size", "Deployment circuit breaker") and the
Application Auto Scaling API reference (``PredefinedMetricSpecification``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_plugins.deploy.common.keys import (
    BUCKET_KEY,
    DRY_RUN_KEY,
    ROLE_ARN,
    VIA_KEY,
    Config,
    Key,
    build,
    help_text,
    typed_values,
)
from mlflow_plugins.errors import InvalidValue, MissingSetting

ECS_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}")  # clusters, services, task families
SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
SECURITY_GROUP = re.compile(r"sg-[0-9a-f]{8,17}")
TARGET_GROUP = re.compile(
    r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[a-zA-Z0-9-]{1,32}/[0-9a-f]{16}"
)
LOG_GROUP = re.compile(r"[\w./#-]{1,512}")

# Fargate task sizes: cpu units -> the memory values (MiB) allowed with it.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
METRICS = ("ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization", "ALBRequestCountPerTarget")
SCALING_KEYS = ("min_capacity", "max_capacity", "target", "metric", "scale_in_cooldown", "scale_out_cooldown")
SCALING_EXAMPLE = '{"min_capacity": 1, "max_capacity": 4, "target": 60, "metric": "ECSServiceAverageCPUUtilization"}'
RESERVED_ENV = ("SAGEMAKER_BIND_TO_PORT",)
DEFAULT_TIMEOUT = 1800  # set from container_port

KEYS: tuple[Key, ...] = (
    Key("cluster", "str", "default", "ECS cluster of the service (it must exist)", "models", pattern=ECS_NAME),
    Key(
        "subnets",
        "list",
        None,
        "subnets of the tasks' network interfaces (required)",
        "subnet-0a1b2c3d,subnet-4e5f6a7b",
        pattern=SUBNET,
    ),
    Key(
        "security_groups",
        "list",
        None,
        "security groups of the tasks; default the VPC's default group",
        "sg-0a1b2c3d",
        pattern=SECURITY_GROUP,
    ),
    Key(
        "assign_public_ip",
        "bool",
        False,
        "give each task a public IP (needed in public subnets without a NAT gateway to pull the image)",
        "true",
    ),
    Key("cpu", "choice", "1024", "task CPU units", "2048", choices=tuple(str(c) for c in FARGATE_SIZES)),
    Key("memory", "int", 2048, "task memory in MiB, one of the values Fargate allows with cpu", "4096", minimum=512),
    Key("desired_count", "int", 1, "tasks to run", "2", minimum=0, maximum=5000),
    Key(
        "image",
        "str",
        None,
        "serving image; default <account>.dkr.ecr.<region>.amazonaws.com/mlflow-sagemaker-ops:<version> (see build-image)",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving:py311",
    ),
    Key(
        "execution_role_arn",
        "str",
        None,
        "task execution role: pulls the image and writes logs (required)",
        "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        pattern=ROLE_ARN,
    ),
    Key(
        "task_role_arn",
        "str",
        None,
        "task role: the runtime reads the model from S3 with it (required)",
        "arn:aws:iam::123456789012:role/ModelReader",
        pattern=ROLE_ARN,
    ),
    Key(
        "target_group_arn",
        "str",
        None,
        "ALB target group (target type ip) that the service registers its tasks in",
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/churn/0123456789abcdef",
        pattern=TARGET_GROUP,
    ),
    Key("container_port", "int", 8080, "port the runtime listens on in the task", "8080", minimum=1, maximum=65535),
    Key(
        "health_check_grace_seconds",
        "int",
        None,
        "seconds the service ignores load-balancer health checks after a task starts (needs target_group_arn)",
        "60",
        minimum=0,
        maximum=2147483647,
    ),
    Key(
        "env", "json", None, "environment variables of the runtime container", '{"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}'
    ),
    Key(
        "autoscaling",
        "json",
        None,
        "target tracking on the service's desired count: min_capacity, max_capacity, target, metric, cooldowns",
        SCALING_EXAMPLE,
    ),
    Key("circuit_breaker", "bool", True, "fail a deployment whose tasks keep failing to start", "true"),
    Key("rollback", "bool", True, "when the circuit breaker trips, roll back to the last completed deployment", "true"),
    Key(
        "minimum_healthy_percent",
        "int",
        100,
        "running tasks kept during a deployment, in percent of desired_count",
        "50",
        minimum=0,
        maximum=100,
    ),
    Key(
        "maximum_percent",
        "int",
        200,
        "tasks allowed during a deployment, in percent of desired_count",
        "200",
        minimum=100,
    ),
    Key(
        "log_group",
        "str",
        None,
        "CloudWatch Logs group of the runtime; default /mlflow-sagemaker-ops/ecs/<cluster>/<name>, created and deleted with the deployment",
        "/ml/churn",
        pattern=LOG_GROUP,
    ),
    BUCKET_KEY,
    Key("kms_key_id", "str", None, "KMS key for the uploaded archive", "arn:aws:kms:eu-west-1:123456789012:key/abc"),
    Key(
        "region_name",
        "str",
        None,
        "AWS region; default from the target URI, AWS_REGION, AWS_DEFAULT_REGION or the profile",
        "eu-west-1",
    ),
    Key("tags", "tags", None, "tags for the service and the task definition", '{"team": "ml"}'),
    Key("synchronous", "bool", True, "wait for a steady service (or a rollback) before returning", "false"),
    Key("timeout_seconds", "int", DEFAULT_TIMEOUT, "how long a synchronous call waits", "3600", minimum=1),
    DRY_RUN_KEY,
    VIA_KEY,
)
CONFIG_KEYS = tuple(key.name for key in KEYS)


@dataclass(frozen=True)
class EcsConfig(Config):
    cluster: str
    subnets: list[str]
    security_groups: list[str] | None
    assign_public_ip: bool
    cpu: int
    memory: int
    desired_count: int
    image: str | None
    execution_role_arn: str
    task_role_arn: str
    target_group_arn: str | None
    container_port: int
    health_check_grace_seconds: int | None
    env: dict[str, Any] | None
    autoscaling: dict[str, Any] | None
    circuit_breaker: bool
    rollback: bool
    minimum_healthy_percent: int
    maximum_percent: int
    log_group: str | None
    bucket: str | None
    kms_key_id: str | None
    region_name: str | None
    tags: dict[str, str] | None
    synchronous: bool
    timeout_seconds: int
    dry_run: bool
    via: str


def parse(config: Mapping[str, Any] | EcsConfig | None) -> EcsConfig:
    """Every key with its typed value; raises on the first problem, before any AWS call."""
    if isinstance(config, EcsConfig):
        return config
    values = typed_values(config, KEYS, "ecs target config", "ecs")
    values["cpu"] = int(values["cpu"])
    check(values)
    return build(EcsConfig, values, config)


def _bad(name: str, value: Any, reason: str, allowed: str, fix: str) -> InvalidValue:
    return InvalidValue(name=name, value=value, reason=reason, allowed=allowed, fix=fix)


def check(values: dict[str, Any]) -> None:
    """Required keys and the combinations ECS and Fargate refuse."""
    for name, what in (
        ("subnets", "one or more subnet IDs"),
        ("execution_role_arn", "an IAM role ARN that ECS tasks can assume"),
        ("task_role_arn", "an IAM role ARN with s3:GetObject on the model bucket"),
    ):
        if not values[name]:
            example = next(key.example for key in KEYS if key.name == name)
            raise MissingSetting(name=name, allowed=what, fix=f"Pass -C {name}={example}.")
    memories = FARGATE_SIZES[values["cpu"]]
    if values["memory"] not in memories:
        shown = ", ".join(str(m) for m in memories)
        raise _bad(
            "memory",
            values["memory"],
            f"Fargate does not run {values['cpu']} CPU units with this memory",
            f"with cpu={values['cpu']}: {shown}",
            f"Pass -C memory={memories[0]}, or another cpu.",
        )
    if values["rollback"] and not values["circuit_breaker"]:
        raise _bad(
            "rollback",
            True,
            "ECS rolls back only when the circuit breaker detects the failure",
            "rollback=true with circuit_breaker=true",
            "Drop -C circuit_breaker=false, or pass -C rollback=false.",
        )
    if values["minimum_healthy_percent"] >= values["maximum_percent"] and values["desired_count"] > 0:
        raise _bad(
            "maximum_percent",
            values["maximum_percent"],
            "a rolling update could neither start a new task nor stop an old one",
            f"maximum_percent above minimum_healthy_percent ({values['minimum_healthy_percent']})",
            "Pass -C maximum_percent=200 (the default).",
        )
    if values["health_check_grace_seconds"] is not None and not values["target_group_arn"]:
        raise _bad(
            "health_check_grace_seconds",
            values["health_check_grace_seconds"],
            "the grace period applies to load-balancer health checks",
            "health_check_grace_seconds with target_group_arn",
            "Drop it, or pass -C target_group_arn=... too.",
        )
    env = values["env"]
    if env is not None:
        if not isinstance(env, dict) or not all(isinstance(v, (str, int, float, bool)) for v in env.values()):
            raise _bad(
                "env",
                env,
                "it must map names to text values",
                '{"NAME": "value"}',
                'Pass -C env=\'{"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}\'.',
            )
        reserved = sorted(set(env) & set(RESERVED_ENV))
        if reserved:
            raise _bad(
                "env",
                env,
                f"{reserved} is set from container_port",
                "any other name",
                "Use -C container_port=... instead.",
            )
    if values["autoscaling"] is not None:
        validate_scaling(values["autoscaling"], values)


def validate_scaling(spec: Any, values: dict[str, Any]) -> dict[str, Any]:
    def bad(reason: str, allowed: str) -> InvalidValue:
        return _bad("autoscaling", spec, reason, allowed, f"Pass -C autoscaling='{SCALING_EXAMPLE}'.")

    if not isinstance(spec, dict):
        raise bad("it is not a JSON object", "a JSON object")
    unknown = sorted(set(spec) - set(SCALING_KEYS))
    if unknown:
        raise bad(f"unknown key(s) {unknown}", ", ".join(SCALING_KEYS))
    for key in ("min_capacity", "max_capacity", "target"):
        value = spec.get(key)
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or value < (0 if key == "min_capacity" else 1)
        ):
            raise bad(f"{key} is missing or not a positive number", "min_capacity, max_capacity and target as numbers")
    if spec["min_capacity"] > spec["max_capacity"]:
        raise bad("min_capacity is above max_capacity", "min_capacity <= max_capacity")
    metric = spec.get("metric", METRICS[0])
    if metric not in METRICS:
        raise bad(f"metric {metric!r} is not a predefined ECS metric", ", ".join(METRICS))
    if metric == "ALBRequestCountPerTarget" and not values["target_group_arn"]:
        raise bad(
            "ALBRequestCountPerTarget counts the requests of a target group", "that metric with -C target_group_arn=..."
        )
    if metric != "ALBRequestCountPerTarget" and spec["target"] > 100:
        raise bad(f"{metric} is a percentage", "a target from 1 to 100")
    if not spec["min_capacity"] <= values["desired_count"] <= spec["max_capacity"]:
        raise _bad(
            "desired_count",
            values["desired_count"],
            "it is outside the autoscaling range",
            f"{spec['min_capacity']} to {spec['max_capacity']}",
            "Pass a desired_count inside min_capacity..max_capacity.",
        )
    for key in ("scale_in_cooldown", "scale_out_cooldown"):
        if key in spec and (not isinstance(spec[key], int) or isinstance(spec[key], bool) or spec[key] < 0):
            raise bad(f"{key} is not a whole number of seconds", f"{key} >= 0")
    return spec


def ecs_help() -> str:
    return help_text(KEYS)

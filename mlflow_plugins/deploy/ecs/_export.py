"""An ECS service as a CloudFormation template (``mlflow-sagemaker-ops export -t ecs``): from the
same arguments as ``mlflow deployments create -t ecs`` (the archive is uploaded,
content-addressed, and referenced), or read from a live service (``--from-service``).

Resources: the log group (when the suite would make it), the Fargate ``TaskDefinition`` the
deployer registers, the ``Service`` with its circuit breaker and rollback, load balancer and
network, and the service's ``ScalableTarget`` and target-tracking ``ScalingPolicy``. The
cluster, subnets, security groups, role ARNs and image are parameters (or, with a shared stack,
its exports).
"""

from __future__ import annotations

from typing import Any

from mlflow_plugins import secrets
from mlflow_plugins.deploy.common import archives, cfn
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.scaling import read_spec
from mlflow_plugins.deploy.ecs import _plan
from mlflow_plugins.deploy.ecs import _scaling as _ecs_scaling
from mlflow_plugins.deploy.ecs import _spec as spec
from mlflow_plugins.deploy.ecs.config import METRICS, SCALING_KEYS, EcsConfig, parse


def from_config(
    deployer: Any, name: str, model_uri: str, cfg: EcsConfig, folder: str, upload: bool = True
) -> tuple[EcsConfig, dict[str, Any], dict[str, str], str]:
    """The config, the task definition and the tags a create would use. The archive goes under
    ``folder`` (an export's or a stack's, which no API update or delete collects);
    ``upload=False`` (a plan) only names its content address."""
    cfg = cfg.replace(log_group=cfg.log_group or spec.default_log_group(cfg.cluster, name))
    wanted = _plan.wanted_model(deployer.clients, cfg.cluster, name, model_uri, cfg, folder)
    if upload:  # content-addressed: at most once
        s3, bucket = deployer.clients("s3"), cfg.bucket or archives.default_bucket(deployer.clients)
        archives.ensure_bucket(s3, bucket, deployer.clients.region)
        archives.upload_archive(s3, bucket, folder, wanted.data, wanted.local_dir, cfg.kms_key_id)
    labels = _plan.labels_of(cfg, model_uri, wanted)
    definition = _plan.wanted_definition(deployer.clients, name, cfg, wanted.s3_uri, labels)
    source = f"mlflow deployments create -t ecs --name {name} -m {secrets.strip_uri(model_uri)}"
    return cfg, definition, suite_labels.as_dict(labels, "key", "value"), source


def from_live(deployer: Any, name: str, copy: bool = True) -> tuple[EcsConfig, dict[str, Any], dict[str, str], str]:
    """The live service ``[CLUSTER/]NAME`` as it runs: its config read back, its task definition
    (with ``copy``, of an archive copied under ``_exports/``, which deleting the service leaves)."""
    cluster, service = deployer.locate(name)
    described = deployer.task_definition(service["taskDefinition"])
    definition = described["taskDefinition"]
    labels = {t["key"]: t["value"] for t in service.get("tags") or []}
    user = {k: v for k, v in labels.items() if suite_labels.is_users(k)}
    values = spec.live_config(service, definition, user)
    found = _ecs_scaling.registered(deployer.clients, cluster, service["serviceName"])
    if found is not None:
        read = read_spec(deployer.clients("application-autoscaling"), found)
        values["autoscaling"] = {k: read[k] for k in SCALING_KEYS if read.get(k) is not None}  # cooldowns too
    request = {**definition, "tags": [{"key": k, "value": v} for k, v in labels.items()]}
    live_uri = spec.model_uri_of(definition)
    if copy and live_uri.startswith("s3://"):  # a copy the template owns: deleting the service leaves it
        copied = archives.copy_to(
            deployer.clients("s3"), live_uri, f"{archives.EXPORTS}/ecs/{cluster}/{service['serviceName']}"
        )
        container = dict(definition["containerDefinitions"][0])
        container["command"] = [copied if part == live_uri else part for part in container.get("command") or []]
        request["containerDefinitions"] = [container]
    return (
        parse(values),
        request,
        labels,
        f"the live service {cluster}/{service['serviceName']} ({service['taskDefinition'].split('/')[-1]})",
    )


def template(
    name: str,
    cfg: EcsConfig,
    definition: dict[str, Any],
    labels: dict[str, str],
    source: str,
    shared_stack: str | None = None,
    resource_label: str | None = None,
) -> dict[str, Any]:
    """``resource_label``: the load balancer's and target group's, for ALBRequestCountPerTarget."""
    out = cfn.Template(f"mlflow-sagemaker-ops: ECS service {cfg.cluster}/{name}", shared_stack)
    out.metadata["exported-from"] = source
    tags = cfn.tags(labels)
    cluster = out.shared("Cluster", "String", cfg.cluster, "The ECS cluster of the service")
    container = {k: v for k, v in definition["containerDefinitions"][0].items() if k in _CONTAINER_FIELDS}
    container["image"] = out.shared("ImageUri", "String", container["image"], "The serving image (see build-image)")
    log_group = (container.get("logConfiguration") or {}).get("options", {}).get("awslogs-group")
    depends = []
    if log_group == spec.default_log_group(cfg.cluster, name):  # the suite's own group: the stack owns it
        depends.append(out.add("LogGroup", "AWS::Logs::LogGroup", {"LogGroupName": log_group}))
    out.add(
        "TaskDefinition",
        "AWS::ECS::TaskDefinition",
        {
            "Family": definition["family"],
            "NetworkMode": definition["networkMode"],
            "RequiresCompatibilities": definition.get("requiresCompatibilities") or ["FARGATE"],
            "Cpu": str(definition["cpu"]),
            "Memory": str(definition["memory"]),
            "ExecutionRoleArn": out.shared(
                "ExecutionRoleArn", "String", definition.get("executionRoleArn"), "The task execution role"
            ),
            "TaskRoleArn": out.shared("TaskRoleArn", "String", definition.get("taskRoleArn"), "The task role"),
            "ContainerDefinitions": [_pascal(container, _CONTAINER_KEYS)],
            "Tags": tags,
        },
        depends_on=depends or None,
    )
    network: dict[str, Any] = {
        "Subnets": out.shared("Subnets", "List<AWS::EC2::Subnet::Id>", cfg.subnets, "Subnets of the tasks"),
        "AssignPublicIp": "ENABLED" if cfg.assign_public_ip else "DISABLED",
    }
    if cfg.security_groups:
        network["SecurityGroups"] = out.shared(
            "SecurityGroups", "List<AWS::EC2::SecurityGroup::Id>", cfg.security_groups, "Security groups of the tasks"
        )
    service: dict[str, Any] = {
        "ServiceName": name,
        "Cluster": cluster,
        "TaskDefinition": cfn.ref("TaskDefinition"),
        "LaunchType": "FARGATE",
        "DesiredCount": cfg.desired_count,
        "NetworkConfiguration": {"AwsvpcConfiguration": network},
        "DeploymentConfiguration": {
            "DeploymentCircuitBreaker": {"Enable": cfg.circuit_breaker, "Rollback": cfg.rollback},
            "MaximumPercent": cfg.maximum_percent,
            "MinimumHealthyPercent": cfg.minimum_healthy_percent,
        },
        "PropagateTags": "SERVICE",
        "EnableECSManagedTags": True,
        "Tags": tags,
    }
    if cfg.target_group_arn:
        service["LoadBalancers"] = [
            {
                "TargetGroupArn": cfg.target_group_arn,
                "ContainerName": spec.CONTAINER,
                "ContainerPort": cfg.container_port,
            }
        ]
        if cfg.health_check_grace_seconds is not None:
            service["HealthCheckGracePeriodSeconds"] = cfg.health_check_grace_seconds
    out.add("Service", "AWS::ECS::Service", service)
    if cfg.autoscaling:
        _scaling(out, name, cluster, cfg, resource_label)
    out.output("ServiceArn", cfn.ref("Service"), "The service's ARN", export=True)
    out.output("ServiceName", cfn.get_att("Service", "Name"), "The service's name", export=True)
    out.provenance(labels)
    return out.as_dict()


def _scaling(out: cfn.Template, name: str, cluster: Any, cfg: EcsConfig, resource_label: str | None) -> None:
    value = cfg.autoscaling or {}
    metric = value.get("metric", METRICS[0])
    target = out.add(
        "ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": _ecs_scaling.NAMESPACE,
            "ScalableDimension": _ecs_scaling.DIMENSION,
            "ResourceId": cfn.sub(f"service/${{Cluster}}/{name}")
            if not out.shared_stack
            else f"service/{cfg.cluster}/{name}",
            "MinCapacity": int(value["min_capacity"]),
            "MaxCapacity": int(value["max_capacity"]),
        },
        depends_on=["Service"],
    )
    tracking: dict[str, Any] = {
        "TargetValue": float(value["target"]),
        "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
    }
    if metric == "ALBRequestCountPerTarget" and resource_label:
        tracking["PredefinedMetricSpecification"]["ResourceLabel"] = resource_label
    for key, field in (("scale_in_cooldown", "ScaleInCooldown"), ("scale_out_cooldown", "ScaleOutCooldown")):
        if key in value:
            tracking[field] = int(value[key])
    out.add(
        "ScalingPolicy",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyName": f"{name}-target-tracking",
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": cfn.ref(target),
            "TargetTrackingScalingPolicyConfiguration": tracking,
        },
    )


# The container fields the deployer sets (a live definition has more, all defaults)
_CONTAINER_FIELDS = (
    "name",
    "image",
    "essential",
    "command",
    "portMappings",
    "environment",
    "healthCheck",
    "logConfiguration",
)
# RegisterTaskDefinition's container fields -> AWS::ECS::TaskDefinition ContainerDefinition's
_CONTAINER_KEYS = {
    "name": "Name",
    "image": "Image",
    "essential": "Essential",
    "command": "Command",
    "portMappings": "PortMappings",
    "environment": "Environment",
    "healthCheck": "HealthCheck",
    "logConfiguration": "LogConfiguration",
    "containerPort": "ContainerPort",
    "protocol": "Protocol",
    "value": "Value",
    "interval": "Interval",
    "timeout": "Timeout",
    "retries": "Retries",
    "startPeriod": "StartPeriod",
    "logDriver": "LogDriver",
    "options": "Options",
}


def _pascal(value: Any, names: dict[str, str]) -> Any:
    """ECS API field names (camelCase) as CloudFormation's (PascalCase); the log options' keys
    (``awslogs-group``) and intrinsic functions are kept."""
    if isinstance(value, list):
        return [_pascal(item, names) for item in value]
    if not isinstance(value, dict) or any(k.startswith(("Fn::", "Ref")) for k in value):
        return value
    if "awslogs-group" in value:
        return value
    return {names.get(k, k[:1].upper() + k[1:]): _pascal(v, names) for k, v in value.items()}

"""The plan of an ECS deployment (:mod:`mlflow_plugins.deploy.common.plan`), from the reads an
update makes and the task definition it would register: a new revision when what the task runs
changes (the model archive, image, size, roles, environment), the service updated in place when
a setting of it changes (a rolling deployment when it gets a new revision), tags and autoscaling
alone in place, and nothing when nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow_plugins.deploy.common import archives, images
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.origin import model_origin
from mlflow_plugins.deploy.common.plan import (
    CREATE,
    DELETE,
    REPLACE,
    UPDATE,
    Change,
    Plan,
    changed_keys,
    differences,
    plan_of,
)
from mlflow_plugins.deploy.common.scaling import read_spec, wanted_spec
from mlflow_plugins.deploy.ecs import _scaling as _ecs_scaling
from mlflow_plugins.deploy.ecs import _spec as spec
from mlflow_plugins.deploy.ecs.config import METRICS, EcsConfig, parse
from mlflow_plugins.packaging import digest, model_archive

KIND = "ecs"
ARCHIVE, LOG_GROUP, TASK, SERVICE, TAGS, SCALING = (
    "S3 archive",
    "log group",
    "ECS task definition",
    "ECS service",
    "tags",
    "autoscaling",
)
TASK_FIELDS = ("cpu", "memory", "image", "execution_role_arn", "task_role_arn", "container_port", "log_group")
SERVICE_FIELDS = (
    "desired_count",
    "subnets",
    "security_groups",
    "assign_public_ip",
    "circuit_breaker",
    "rollback",
    "minimum_healthy_percent",
    "maximum_percent",
    "target_group_arn",
    "health_check_grace_seconds",
)


@dataclass(frozen=True)
class Wanted:
    """The model a deploy would run: its archive's bytes and content address."""

    data: bytes
    s3_uri: str
    digest: str
    local_dir: str


def wanted_model(
    clients: Any, cluster: str, name: str, model_uri: str, cfg: EcsConfig, folder: str | None = None
) -> Wanted:
    """The archive a deploy of ``model_uri`` would run, at its content address under ``folder``
    (the service's own by default)."""
    local = archives.local_pyfunc_model(model_uri)
    data = model_archive(local)
    address = digest(data)
    bucket = cfg.bucket or archives.default_bucket(clients)
    place = folder or f"ecs/{cluster}/{name}"
    return Wanted(data, f"s3://{bucket}/{archives.PREFIX}/{place}/{address[:24]}/model.tar.gz", address, local)


def creation(clients: Any, cluster: str, name: str, wanted: Wanted, cfg: EcsConfig) -> Plan:
    changes = [
        None
        if archives.stored(clients("s3"), wanted.s3_uri)
        else Change(CREATE, ARCHIVE, wanted.s3_uri, (f"model digest {wanted.digest[:12]}",)),
        None if _log_group_exists(clients, cfg.log_group) else Change(CREATE, LOG_GROUP, str(cfg.log_group)),
        Change(CREATE, TASK, f"{name}:<next revision>", (f"{cfg.cpu} CPU units, {cfg.memory} MiB",)),
        Change(CREATE, SERVICE, f"{cluster}/{name}", (f"{cfg.desired_count} task(s)",), how=rollout(cfg)),
        Change(CREATE, SCALING, _ecs_scaling.resource_id(cluster, name), (_words(cfg.autoscaling),))
        if cfg.autoscaling
        else None,
    ]
    return plan_of(KIND, f"{cluster}/{name}", changes)


def update_plan(
    clients: Any,
    cluster: str,
    service: dict[str, Any],
    live_definition: dict[str, Any],
    wanted_definition: dict[str, Any],
    live_cfg: EcsConfig,
    cfg: EcsConfig,
    wanted: Wanted | None,
    scaling_given: bool,
    leftovers: list[Change],
) -> Plan:
    """An update of a live service: ``live_cfg`` is the config it was deployed with (read back),
    ``cfg`` the one the update would deploy, ``wanted_definition`` its task definition."""
    name = service["serviceName"]
    live_tags = {t["key"]: t["value"] for t in service.get("tags") or []}
    task_reasons: tuple[str, ...] = ()
    if spec.model_uri_of(live_definition) != spec.model_uri_of(wanted_definition):
        old = str(live_tags.get(suite_labels.MODEL_DIGEST, "unknown"))[:12]
        new = wanted.digest[:12] if wanted is not None else "unknown"
        task_reasons = (f"model digest {old} -> {new}" if old != new else "model archive moved",)
    task_reasons += differences({f: (getattr(live_cfg, f), getattr(cfg, f)) for f in TASK_FIELDS})
    task_reasons += changed_keys("environment", live_cfg.env, cfg.env)
    if not task_reasons and not spec.same_task(wanted_definition, live_definition):
        task_reasons = ("the suite's task definition changed (health check, ports or logging)",)
    service_reasons = differences({f: (getattr(live_cfg, f), getattr(cfg, f)) for f in SERVICE_FIELDS})
    wanted_tags = {t["key"]: t["value"] for t in wanted_definition["tags"]}
    tag_reasons = changed_keys("tags", _comparable(live_tags), _comparable(wanted_tags))
    where = f"{cluster}/{name}"
    changes: list[Change | None] = []
    if task_reasons:
        changes += [
            None
            if wanted is None or archives.stored(clients("s3"), wanted.s3_uri)
            else Change(CREATE, ARCHIVE, wanted.s3_uri, (f"model digest {wanted.digest[:12]}",)),
            Change(REPLACE, TASK, service["taskDefinition"].split("/")[-1], task_reasons, how="a new revision"),
        ]
    if task_reasons or service_reasons:
        changes.append(
            Change(
                UPDATE,
                SERVICE,
                where,
                task_reasons + service_reasons,
                how=rollout(cfg) if task_reasons else "an in-place update",
            )
        )
    if tag_reasons and not task_reasons:  # a new revision retags the service anyway
        changes.append(Change(UPDATE, TAGS, where, tag_reasons))
    if cfg.log_group and not _log_group_exists(clients, cfg.log_group):
        changes.append(Change(CREATE, LOG_GROUP, cfg.log_group))
    if scaling_given:
        changes.append(_scaling_change(clients, cluster, name, cfg))
    return plan_of(KIND, where, [*changes, *leftovers])


def left_behind(revisions: list[str], archives_found: list[str]) -> list[Change]:
    """Older revisions of the family and archives that no live revision runs: what a failed or
    interrupted update left; a run collects them."""
    why = ("left by an earlier update",)
    return [Change(DELETE, TASK, arn.split("/")[-1], why) for arn in revisions] + [
        Change(DELETE, ARCHIVE, uri, why) for uri in archives_found
    ]


def rollout(cfg: EcsConfig) -> str:
    breaker = (
        "circuit breaker with rollback"
        if cfg.circuit_breaker and cfg.rollback
        else ("circuit breaker, no rollback" if cfg.circuit_breaker else "no circuit breaker")
    )
    return f"a rolling deployment ({cfg.minimum_healthy_percent}-{cfg.maximum_percent}% healthy, {breaker})"


def _scaling_change(clients: Any, cluster: str, name: str, cfg: EcsConfig) -> Change | None:
    """``autoscaling`` given: registered as configured; given as none, removed."""
    resource = _ecs_scaling.resource_id(cluster, name)
    found = _ecs_scaling.registered(clients, cluster, name)
    if cfg.autoscaling is None:
        return Change(DELETE, SCALING, resource, ("autoscaling removed",)) if found else None
    if found is None:
        return Change(CREATE, SCALING, resource, (_words(cfg.autoscaling),))
    live = read_spec(clients("application-autoscaling"), found)
    reasons = differences({k: (live.get(k), v) for k, v in wanted_spec(cfg.autoscaling, METRICS[0]).items()})
    return Change(UPDATE, SCALING, resource, reasons) if reasons else None


def labels_of(cfg: EcsConfig, model_uri: str, wanted: Wanted) -> list[dict[str, str]]:
    """The tags a deploy of ``model_uri`` writes (provenance read from the tracking server)."""
    values = suite_labels.suite_tags(model_uri, wanted.digest, model_origin(model_uri, wanted.local_dir))
    return [{"key": k, "value": v} for k, v in suite_labels.with_user_tags(values, cfg.tags).items()]


def wanted_definition(
    clients: Any, name: str, cfg: EcsConfig, model_s3_uri: str, labels: list[dict[str, str]]
) -> dict[str, Any]:
    return spec.task_definition(name, cfg, images.image_uri(clients, cfg.image), model_s3_uri, clients.region, labels)


def live_config(service: dict[str, Any], definition: dict[str, Any], user_tags: dict[str, str]) -> EcsConfig:
    return parse(spec.live_config(service, definition, user_tags))


def _log_group_exists(clients: Any, group: str | None) -> bool:
    if not group:
        return True
    pages = clients("logs").get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group)
    return any(g["logGroupName"] == group for page in pages for g in page["logGroups"])


def _comparable(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k not in (suite_labels.SUITE_VERSION, suite_labels.DEPLOYMENT_ID)}


def _words(spec_value: dict[str, Any] | None) -> str:
    value = spec_value or {}
    return f"{value.get('min_capacity')} to {value.get('max_capacity')} tasks, target {value.get('target')}"

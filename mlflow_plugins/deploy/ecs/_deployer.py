"""Deploying MLflow models to Amazon ECS on Fargate: one service per deployment.

What a deployment named ``churn`` in cluster ``models`` owns, and deletes with it:

* the service ``churn`` (rolling updates with the deployment circuit breaker and rollback on by
  default), with its autoscaling target and policy;
* the task definition family ``churn`` (one revision per model or setting change; old revisions
  are deregistered and deleted once a new one has completed);
* the model archives under ``s3://<bucket>/mlflow-sagemaker-ops/ecs/models/churn/``
  (content-addressed: the same model is uploaded once);
* the log group ``/mlflow-sagemaker-ops/ecs/models/churn``, when the suite created it.

``create`` and ``update`` wait for the new deployment to settle (see :mod:`._ecs_wait`). A
deployment that the circuit breaker fails fails the command with ECS's reason and the last
stopped task's; after a rollback, the failed revision and its archive are removed, so the
service is left as it was. A failed ``create`` leaves nothing behind.
"""

from __future__ import annotations

import builtins
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mlflow_plugins.deploy.common import archives, images, keys, s3uri
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.journal import Journal, attempt, incomplete, outcome
from mlflow_plugins.deploy.common.labels import MANAGED
from mlflow_plugins.deploy.common.origin import model_origin
from mlflow_plugins.deploy.common.plan import DELETE, Plan
from mlflow_plugins.deploy.common.progress import Say, wait_delay
from mlflow_plugins.deploy.ecs import _invoke as _ecs_invoke
from mlflow_plugins.deploy.ecs import _plan
from mlflow_plugins.deploy.ecs import _scaling as _ecs_scaling
from mlflow_plugins.deploy.ecs import _spec as spec
from mlflow_plugins.deploy.ecs import config as ecs_config
from mlflow_plugins.deploy.ecs._wait import deployment_of, wait_for_deployment, why_tasks_failed
from mlflow_plugins.errors import AwsCallFailed, InvalidValue, ResourceConflict, ResourceNotFound, as_domain_error

SUITE_TAGS = ("mlflow-sagemaker-ops:",)
log = logging.getLogger("mlflow_plugins.deploy.ecs")


def stderr(message: str) -> None:
    log.info("%s", message)


class RolledBack(AwsCallFailed):
    """The circuit breaker failed the deployment and ECS rolled the service back."""

    fmt = "ECS rolled {service} back to {live}: {detail} {fix}"
    mlflow_code = "INTERNAL_ERROR"


@dataclass(frozen=True)
class Prepared:
    """An update's reads, its settings, the task definition it would register and its plan."""

    cluster: str
    service: dict[str, Any]  # DescribeServices
    cfg: ecs_config.EcsConfig
    wanted: _plan.Wanted | None  # None: the same model
    definition: dict[str, Any]  # RegisterTaskDefinition's request
    labels: builtins.list[dict[str, str]]
    plan: Plan


class EcsDeployer:
    def __init__(self, clients: Any, say: Say = stderr) -> None:
        self.clients, self.say = clients, say
        self.ecs = clients("ecs")

    # ---- create ------------------------------------------------------------------------
    def create(self, name: str, model_uri: str, config: dict[str, Any] | ecs_config.EcsConfig | None) -> dict[str, Any]:
        cfg = ecs_config.parse(config)
        _check_name(name)
        cluster = cfg.cluster
        log_group = cfg.log_group or spec.default_log_group(cluster, name)
        cfg = cfg.replace(log_group=log_group)
        self._check_cluster(cluster)
        if self._describe(cluster, name) is not None:
            raise ResourceConflict(
                kind="ECS service",
                name=f"{cluster}/{name}",
                fix="Use `mlflow deployments update -t ecs`, or delete it first.",
            )
        self._check_target_group(cfg)
        local = archives.local_pyfunc_model(model_uri)  # before any write
        created = self.journal(name, cfg)
        try:
            model = self._upload(cluster, name, local, cfg)
            if model.bytes_uploaded:
                created.add("archive", model.s3_uri)
            if self._ensure_log_group(log_group):
                created.add("log_group", log_group)
            labels = self._tags(cfg, model, model_uri)
            definition = self._register(name, cfg, model, labels)
            created.add("task_definition", definition)
            started = datetime.now(timezone.utc)
            service = self.ecs.create_service(
                cluster=cluster,
                serviceName=name,
                taskDefinition=definition,
                launchType="FARGATE",
                propagateTags="SERVICE",
                enableECSManagedTags=True,
                tags=labels,
                **spec.service_settings(cfg),
            )["service"]
            created.add("service", f"{cluster}/{name}")
            self.say(
                f"Creating ECS service {cluster}/{name} ({definition.split('/')[-1]}); uploaded {model.bytes_uploaded} bytes"
            )
            if cfg.synchronous:
                self._settle(cluster, name, service["deployments"][0]["id"], cfg, started, first=True)
                if cfg.autoscaling is not None:
                    created.add("scaling", f"{cluster}/{name}")
                self._scale(cluster, name, cfg)
        except Exception as error:
            left = created.undo()
            raise as_domain_error(error, outcome(left, "Nothing was left behind.", "run create again")) from None
        return self.get(f"{cluster}/{name}")

    # ---- plan and update -----------------------------------------------------------------
    def plan_create(self, name: str, model_uri: str, config: dict[str, Any] | ecs_config.EcsConfig | None) -> Plan:
        """What :meth:`create` would make, with reads only."""
        cfg = ecs_config.parse(config)
        _check_name(name)
        cfg = cfg.replace(log_group=cfg.log_group or spec.default_log_group(cfg.cluster, name))
        self._check_cluster(cfg.cluster)
        self._check_target_group(cfg)
        wanted = _plan.wanted_model(self.clients, cfg.cluster, name, model_uri, cfg)
        return _plan.creation(self.clients, cfg.cluster, name, wanted, cfg)

    def plan(self, name: str, model_uri: str | None, config: dict[str, Any] | ecs_config.EcsConfig | None) -> Plan:
        """What :meth:`update` would change, with reads only."""
        return self._prepare(name, model_uri, config).plan

    def _prepare(
        self, name: str, model_uri: str | None, config: dict[str, Any] | ecs_config.EcsConfig | None
    ) -> Prepared:
        """An update's reads and checks, and its plan."""
        given = config.given_values() if isinstance(config, ecs_config.EcsConfig) else dict(config or {})
        cluster, service = self.locate(name, given.get("cluster"))
        name = service["serviceName"]
        if "cluster" in given and given["cluster"] != cluster:
            raise InvalidValue(
                name="cluster",
                value=given["cluster"],
                reason="a service cannot move to another cluster",
                allowed=cluster,
                fix="Delete it and create it in the other cluster.",
            )
        live = self.task_definition(service["taskDefinition"])
        # The user's tags as the service has them: a tags-only update retags the service in place.
        user_tags = {t["key"]: t["value"] for t in service.get("tags") or [] if suite_labels.is_users(t["key"])}
        read_back = spec.live_config(service, live["taskDefinition"], user_tags)
        cfg = ecs_config.parse({**read_back, **given})
        labels_of_live = {t["key"]: t["value"] for t in live.get("tags", [])}
        if model_uri is not None:
            wanted: _plan.Wanted | None = _plan.wanted_model(self.clients, cluster, name, model_uri, cfg)
            assert wanted is not None
            model_s3_uri = wanted.s3_uri
            labels = _plan.labels_of(cfg, model_uri, wanted)
        else:  # the same model: its provenance tags stay
            wanted, model_s3_uri = None, spec.model_uri_of(live["taskDefinition"])
            carried = {k: v for k, v in labels_of_live.items() if k.startswith(SUITE_TAGS)}
            labels = [{"key": k, "value": v} for k, v in suite_labels.with_user_tags(carried, cfg.tags).items()]
        definition = _plan.wanted_definition(self.clients, name, cfg, model_s3_uri, labels)
        plan = _plan.update_plan(
            self.clients,
            cluster,
            service,
            live["taskDefinition"],
            definition,
            ecs_config.parse(read_back),
            cfg,
            wanted,
            "autoscaling" in given,
            _plan.left_behind(*self._left_behind(name, live["taskDefinition"], model_s3_uri)),
        )
        return Prepared(cluster, service, cfg, wanted, definition, labels, plan)

    def update(
        self, name: str, model_uri: str | None, config: dict[str, Any] | ecs_config.EcsConfig | None
    ) -> dict[str, Any]:
        """Run the update's plan: no change, no write; tags or autoscaling alone, in place; the
        service's settings, UpdateService; what the task runs, a new revision rolled out."""
        prepared = self._prepare(name, model_uri, config)
        cluster, service, cfg, plan = prepared.cluster, prepared.service, prepared.cfg, prepared.plan
        name = service["serviceName"]
        self.say(plan.text())
        if plan.empty:
            return self.get(f"{cluster}/{name}")
        if not plan.touches(_plan.SERVICE):
            steps: builtins.list[tuple[str, Callable[[], Any]]] = []
            if plan.touches(_plan.LOG_GROUP) and cfg.log_group:
                group = cfg.log_group
                steps.append(("create the log group", lambda: self._ensure_log_group(group)))
            if plan.touches(_plan.TAGS):
                steps.append(("tag the service", lambda: self._retag(service, prepared.labels)))
            if plan.touches(_plan.SCALING):
                steps.append(("apply autoscaling", lambda: self._scale(cluster, name, cfg)))
            if any(change.action == DELETE for change in plan.changes):
                steps.append(
                    (
                        "delete what earlier updates left",
                        lambda: self._cleanup(name, service["taskDefinition"]),
                    )
                )
            unfinished = [entry for step, run in steps for entry in attempt(step, run)]
            if unfinished:
                raise AwsCallFailed(
                    operation="UpdateService",
                    code="Unfinished",
                    detail=f"ECS service {cluster}/{name} serves on unchanged, but could not " + "; ".join(unfinished),
                    fix="Run update again.",
                )
            return self.get(f"{cluster}/{name}")
        labels, wanted = prepared.labels, prepared.wanted
        created = self.journal(name, cfg)
        try:
            if plan.touches(_plan.LOG_GROUP) and cfg.log_group and self._ensure_log_group(cfg.log_group):
                created.add("log_group", cfg.log_group)
            if wanted is not None:
                model = self._upload(cluster, name, wanted.local_dir, cfg, wanted.data)
                if model.bytes_uploaded:
                    created.add("archive", model.s3_uri)
            definition = service["taskDefinition"]
            if plan.touches(_plan.TASK):
                definition = self.ecs.register_task_definition(**prepared.definition)["taskDefinition"][
                    "taskDefinitionArn"
                ]
                created.add("task_definition", definition)
            started = datetime.now(timezone.utc)
            updated = self.ecs.update_service(
                cluster=cluster, service=name, taskDefinition=definition, **spec.service_settings(cfg)
            )["service"]
        except Exception as error:
            left = created.undo()
            raise as_domain_error(error, outcome(left, "The service was not changed.", "run update again")) from None
        self.say(f"Updating ECS service {cluster}/{name} to {definition.split('/')[-1]}")
        deployment = next(d for d in updated["deployments"] if d["status"] == "PRIMARY")
        if cfg.synchronous:
            self._settle(
                cluster,
                name,
                deployment["id"],
                cfg,
                started,
                first=False,
                failed_definition=definition,
                live_definition=service["taskDefinition"],
            )
        steps = [
            # The service's tags say what it serves: after a rollback they still name the old model.
            ("tag the service with its new model", lambda: self._retag(service, labels)),
        ]
        if plan.touches(_plan.SCALING):  # as planned: a rule that repeats its autoscaling changes nothing
            steps.append(("apply autoscaling", lambda: self._scale(cluster, name, cfg)))
        if cfg.synchronous:
            steps.append(("delete the replaced task definitions and archives", lambda: self._cleanup(name, definition)))
        unfinished = [entry for step, run in steps for entry in attempt(step, run)]  # each tried, every failure named
        if unfinished:
            raise AwsCallFailed(
                operation="UpdateService",
                code="Unfinished",
                detail=f"ECS service {cluster}/{name} runs {definition.split('/')[-1]} now, but could not "
                + "; ".join(unfinished),
                fix="Run update again (it finishes these and collects what earlier updates left), or delete.",
            )
        return self.get(f"{cluster}/{name}")

    # ---- waiting and the outcome ---------------------------------------------------------
    def _settle(
        self,
        cluster: str,
        name: str,
        deployment_id: str,
        cfg: ecs_config.EcsConfig,
        started: datetime,
        first: bool,
        failed_definition: str | None = None,
        live_definition: str | None = None,
    ) -> None:
        try:
            service = wait_for_deployment(
                self.ecs, cluster, name, deployment_id, cfg.timeout_seconds, self.say, started
            )
        except Exception as error:  # WaiterError: timeout, or the service went away
            raise AwsCallFailed(
                operation="waiting for the ECS deployment",
                code=type(error).__name__,
                detail=str(error),
                fix=f"See `mlflow deployments get -t ecs --name {cluster}/{name}` and the service's events.",
            ) from None
        deployment = deployment_of(service, deployment_id)
        if deployment is not None and deployment.get("rolloutState") == "COMPLETED":
            return
        reason = (deployment or {}).get(
            "rolloutStateReason"
        ) or f"deployment {deployment_id} was replaced by another one"
        detail = reason + why_tasks_failed(self.ecs, self.clients("logs"), cluster, deployment_id)
        primary = next((d for d in service["deployments"] if d["status"] == "PRIMARY"), None)
        if first or primary is None or primary["id"] == deployment_id:
            raise AwsCallFailed(
                operation="CreateService" if first else "UpdateService",
                code="DeploymentFailed",
                detail=detail,
                fix="Fix the cause (the model, env or image), then run the command again.",
            )
        self.say(f"The deployment failed; ECS is rolling back ({primary['id']}).")
        try:
            wait_for_deployment(self.ecs, cluster, name, primary["id"], cfg.timeout_seconds, self.say, started)
        except Exception as error:
            detail += f" The rollback did not settle either: {error}."
        if failed_definition and failed_definition != live_definition:
            self.remove_revision(failed_definition, keep=primary["taskDefinition"])
        raise RolledBack(
            service=f"{cluster}/{name}",
            live=primary["taskDefinition"].split("/")[-1],
            operation="UpdateService",
            code="RolledBack",
            detail=detail,
            fix="The service runs the previous model as before; fix the cause, then run update again.",
        )

    def _left_behind(
        self, family: str, live: dict[str, Any], wanted_uri: str
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        """The family's revisions but the live one, and the archives under the live model's prefix
        that neither it nor ``wanted_uri`` is (reads: what :meth:`_cleanup` deletes)."""
        older = [
            arn
            for arn in self.revisions(family) + self.revisions(family, "INACTIVE")
            if arn != live["taskDefinitionArn"]
        ]
        kept = spec.model_uri_of(live)
        if not kept:
            return older, []
        bucket, prefix = s3uri.split(kept.rsplit("/", 2)[0] + "/")
        pages = self.clients("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        uris = (f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", []))
        return older, [uri for uri in uris if uri not in (kept, wanted_uri)]

    def _cleanup(self, name: str, live_definition: str) -> None:
        """After a completed update: the archives the live revision does not run go first (those
        of older revisions, and any an earlier failed update left), then the older revisions (kept
        until then: they record where the archives are)."""
        kept = spec.model_uri_of(self.task_definition(live_definition)["taskDefinition"])
        older = [arn for arn in self.revisions(name) + self.revisions(name, "INACTIVE") if arn != live_definition]
        revisions = ", ".join(arn.split("/")[-1] for arn in older) or "none"
        if kept:
            bucket, prefix = s3uri.split(kept.rsplit("/", 2)[0] + "/")
            s3 = self.clients("s3")
            try:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    keys = [{"Key": o["Key"]} for o in page.get("Contents", []) if f"s3://{bucket}/{o['Key']}" != kept]
                    if keys:
                        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            except Exception as error:
                raise RuntimeError(
                    f"the archives under s3://{bucket}/{prefix} but {kept} are left ({error}); so are the task "
                    f"definitions {revisions}, which record them"
                ) from None
        try:
            self.delete_revisions(older)
        except Exception as error:
            raise RuntimeError(f"the task definitions {revisions} are left ({error})") from None

    def remove_revision(self, arn: str, keep: str) -> None:
        kept_uri = spec.model_uri_of(self.task_definition(keep)["taskDefinition"])
        gone = self.task_definition(arn)["taskDefinition"]
        self.delete_revisions([arn])
        uri = spec.model_uri_of(gone)
        if uri and uri != kept_uri:
            s3uri.delete_object(self.clients("s3"), uri)

    # ---- delete, get, list -------------------------------------------------------------
    def delete(self, name: str, config: dict[str, Any] | ecs_config.EcsConfig | None = None) -> None:
        """DeleteService is the point of no return: if it fails, the service is unchanged with its
        autoscaling. After it, every step runs even if one fails, and what is left is named; a
        second delete (the service gone) collects what the first one left."""
        given = config.given_values() if isinstance(config, ecs_config.EcsConfig) else dict(config or {})
        timeout = int(given.get("timeout_seconds") or ecs_config.DEFAULT_TIMEOUT)
        try:
            cluster, service = self.locate(name, given.get("cluster"))
        except ResourceNotFound:
            if self._collect_leftovers(name.split("/")[-1], given.get("cluster") or _cluster_of(name)):
                return
            raise
        name = service["serviceName"]
        definition = self.task_definition(service["taskDefinition"])["taskDefinition"]
        try:
            if service["status"] == "ACTIVE":  # a DRAINING one is being deleted already
                self.ecs.delete_service(cluster=cluster, service=name, force=True)
        except self.ecs.exceptions.ClientError as error:
            raise as_domain_error(
                error,
                f"ECS service {cluster}/{name} is unchanged, with its autoscaling; check the message, then run "
                "delete again.",
            ) from None
        self.say(f"Deleting ECS service {cluster}/{name}: stopping its tasks")
        left = self._remove_the_rest(cluster, name, definition, timeout)
        if left:
            raise incomplete(f"ECS service {cluster}/{name} is deleted", left)
        self.say(f"Deleted ECS service {cluster}/{name}, its task definitions, log group and model archives")

    def _remove_the_rest(
        self, cluster: str | None, name: str, definition: dict[str, Any], timeout: int | None
    ) -> builtins.list[str]:
        """What a service leaves once it is deleted, each step tried; what could not go, named.
        ``timeout`` bounds the wait for the service to drain (None: it is gone already)."""
        group = ((definition["containerDefinitions"][0].get("logConfiguration") or {}).get("options") or {}).get(
            "awslogs-group"
        )
        uri = spec.model_uri_of(definition)
        prefix = uri.rsplit("/", 2)[0] + "/" if uri else None
        steps: list[tuple[str, Any]] = []
        if cluster:
            where = cluster
            steps.append(
                (f"scalable target service/{where}/{name}", lambda: _ecs_scaling.remove(self.clients, where, name))
            )
            if timeout is not None:
                steps.append(
                    (f"service {where}/{name} (still draining)", lambda: self._wait_inactive(where, name, timeout))
                )
        if group:
            steps.append((f"log group {group}", lambda: self._delete_log_group(group)))
        if prefix:
            steps.append((f"model archives under {prefix}", lambda: s3uri.delete_prefix(self.clients("s3"), prefix)))
        left = [entry for what, step in steps for entry in attempt(what, step)]
        revisions = f"task definitions of family {name}"
        if left:  # the revisions say where the log group and archives are: a second delete needs them
            return [*left, f"{revisions} (kept until the rest is gone)"]
        return attempt(
            revisions, lambda: self.delete_revisions(self.revisions(name) + self.revisions(name, "INACTIVE"))
        )

    def _collect_leftovers(self, name: str, cluster: str | None) -> bool:
        """After a delete that stopped midway (the service is gone): remove its task definitions,
        scalable target, log group and archives. False when there is nothing of ``name`` left."""
        arns = [  # only the suite's own: a family of that name the user made is theirs
            arn
            for arn in self.revisions(name) + self.revisions(name, "INACTIVE")
            if {"key": MANAGED, "value": "true"} in (self.task_definition(arn).get("tags") or [])
        ]
        if cluster is None:  # the scalable target names its cluster: service/CLUSTER/NAME
            targets = _ecs_scaling.registered_for(self.clients, name)
            cluster = targets[0].split("/")[1] if targets else None
        scaled = cluster is not None and _ecs_scaling.registered(self.clients, cluster, name) is not None
        if not arns and not scaled:
            return False
        definition = self.task_definition(arns[-1])["taskDefinition"] if arns else {"containerDefinitions": [{}]}
        left = self._remove_the_rest(cluster if scaled else None, name, definition, None)
        if left:
            raise incomplete(
                f"ECS service {name} was deleted before", left, "Run delete again, or delete them by hand."
            )
        self.say(f"ECS service {name} was already deleted; removed what an earlier delete left")
        return True

    def get(self, name: str) -> dict[str, Any]:
        cluster, service = self.locate(name)
        labels = {t["key"]: t["value"] for t in service.get("tags") or []}
        definition = self.task_definition(service["taskDefinition"])["taskDefinition"]
        balancers = service.get("loadBalancers") or []
        scaling = _ecs_scaling.registered(self.clients, cluster, service["serviceName"])
        return {
            "name": service["serviceName"],
            "cluster": cluster,
            "flavor": "python_function",
            "service_arn": service["serviceArn"],
            "status": service["status"],
            "task_definition": service["taskDefinition"].split("/")[-1],
            "desired_count": service["desiredCount"],
            "running_count": service["runningCount"],
            "pending_count": service["pendingCount"],
            "deployments": [
                {
                    "id": d["id"],
                    "status": d["status"],
                    "rollout_state": d.get("rolloutState"),
                    "task_definition": d["taskDefinition"].split("/")[-1],
                    "running": d.get("runningCount"),
                    "failed_tasks": d.get("failedTasks"),
                }
                for d in service.get("deployments") or []
            ],
            "model_uri": labels.get(spec.MODEL_URI_TAG),
            "model_s3_uri": spec.model_uri_of(definition),
            "image": definition["containerDefinitions"][0]["image"],
            "cpu": definition["cpu"],
            "memory": definition["memory"],
            "target_group_arn": balancers[0]["targetGroupArn"] if balancers else None,
            "registered_model": labels.get("mlflow-sagemaker-ops:registered-model"),
            "model_version": labels.get("mlflow-sagemaker-ops:model-version"),
            "run_id": labels.get("mlflow-sagemaker-ops:run-id"),
            "autoscaling": {"min_capacity": scaling["MinCapacity"], "max_capacity": scaling["MaxCapacity"]}
            if scaling
            else None,
        }

    def list(self) -> builtins.list[dict[str, Any]]:
        found = []
        for cluster_arn in self._paginate("list_clusters", "clusterArns"):
            cluster = cluster_arn.split("/")[-1]
            arns = self._paginate("list_services", "serviceArns", cluster=cluster)
            for start in range(0, len(arns), 10):  # DescribeServices takes up to 10
                for service in self.ecs.describe_services(
                    cluster=cluster, services=arns[start : start + 10], include=["TAGS"]
                )["services"]:
                    labels = {t["key"]: t["value"] for t in service.get("tags") or []}
                    if labels.get(MANAGED) == "true":
                        found.append(
                            {
                                "name": service["serviceName"],
                                "cluster": cluster,
                                "status": service["status"],
                                "running_count": service["runningCount"],
                                "model_uri": labels.get(spec.MODEL_URI_TAG),
                            }
                        )
        return found

    def locate(self, name: str, cluster: str | None = None) -> tuple[str, dict[str, Any]]:
        """``cluster/name``, or a name searched in ``cluster`` or else in every cluster."""
        if "/" in name:
            cluster, name = name.split("/", 1)
        clusters = (
            [cluster] if cluster else [arn.split("/")[-1] for arn in self._paginate("list_clusters", "clusterArns")]
        )
        found = [(c, s) for c in clusters if (s := self._describe(c, name)) is not None]
        if not found:
            where = f"cluster {cluster}" if cluster else "any cluster"
            raise ResourceNotFound(
                kind="ECS service", name=name, fix=f"It is not in {where}; see `mlflow deployments list -t ecs`."
            )
        if len(found) > 1:
            choices = ", ".join(f"{c}/{name}" for c, _ in found)
            raise InvalidValue(
                name="--name",
                value=name,
                reason="services of that name run in several clusters",
                allowed=choices,
                fix="Pass --name CLUSTER/NAME.",
            )
        return found[0]

    # ---- invoke ------------------------------------------------------------------------
    def invoke(self, name: str, body: bytes, content_type: str, via: str | None = None) -> bytes:
        cluster, service = self.locate(name)
        return _ecs_invoke.invoke(self.ecs, self.clients("elbv2"), cluster, service, body, content_type, via)

    def address(self, cluster: str, service: dict[str, Any], via: str | None = None) -> str:
        return _ecs_invoke.address(self.ecs, self.clients("elbv2"), cluster, service, via)

    # ---- pieces ------------------------------------------------------------------------
    def _describe(self, cluster: str, name: str) -> dict[str, Any] | None:
        try:
            found = self.ecs.describe_services(cluster=cluster, services=[name], include=["TAGS"])["services"]
        except self.ecs.exceptions.ClusterNotFoundException:
            return None
        live = [s for s in found if s["status"] != "INACTIVE"]
        return live[0] if live else None

    def _check_cluster(self, cluster: str) -> None:
        described = self.ecs.describe_clusters(clusters=[cluster])
        if not [c for c in described["clusters"] if c["status"] == "ACTIVE"]:
            raise ResourceNotFound(
                kind="ECS cluster",
                name=cluster,
                fix=f"Create it (`aws ecs create-cluster --cluster-name {cluster}`) or pass -C cluster=NAME.",
            )

    def _check_target_group(self, cfg: ecs_config.EcsConfig) -> None:
        if not cfg.target_group_arn:
            return
        elbv2 = self.clients("elbv2")
        try:
            group = elbv2.describe_target_groups(TargetGroupArns=[cfg.target_group_arn])["TargetGroups"][0]
        except elbv2.exceptions.TargetGroupNotFoundException:
            raise ResourceNotFound(
                kind="target group", name=cfg.target_group_arn, fix="Check -C target_group_arn."
            ) from None
        if group.get("TargetType") != "ip":
            raise InvalidValue(
                name="target_group_arn",
                value=cfg.target_group_arn,
                reason=f"its target type is {group.get('TargetType')}; Fargate tasks register by IP",
                allowed="a target group with TargetType ip",
                fix="Create the target group with --target-type ip.",
            )
        if not group.get("LoadBalancerArns"):
            raise InvalidValue(
                name="target_group_arn",
                value=cfg.target_group_arn,
                reason="no load balancer forwards to it",
                allowed="a target group behind a listener",
                fix="Add a listener rule that forwards to it.",
            )

    def _upload(
        self, cluster: str, name: str, local_dir: str, cfg: ecs_config.EcsConfig, data: bytes | None = None
    ) -> archives.UploadedModel:
        """The model's archive at its content address (``data``: the archive, when built already)."""
        s3 = self.clients("s3")
        bucket = cfg.bucket or archives.default_bucket(self.clients)
        archives.ensure_bucket(s3, bucket, self.clients.region)
        if data is None:
            return archives.upload_model(s3, bucket, f"ecs/{cluster}/{name}", local_dir, cfg.kms_key_id)
        return archives.upload_archive(s3, bucket, f"ecs/{cluster}/{name}", data, local_dir, cfg.kms_key_id)

    def _ensure_log_group(self, group: str) -> bool:
        logs = self.clients("logs")
        try:
            logs.create_log_group(logGroupName=group, tags={MANAGED: "true"})
            return True
        except logs.exceptions.ResourceAlreadyExistsException:
            return False

    def _delete_log_group(self, group: str | None) -> None:
        if not group:
            return
        logs = self.clients("logs")
        try:
            tags = logs.list_tags_log_group(logGroupName=group).get("tags", {})
        except logs.exceptions.ResourceNotFoundException:
            return
        if tags.get(MANAGED) == "true":  # a group the user named and made is theirs
            logs.delete_log_group(logGroupName=group)

    def _tags(
        self, cfg: ecs_config.EcsConfig, model: Any, model_uri: str, carried: dict[str, str] | None = None
    ) -> builtins.list[dict[str, str]]:
        if carried is not None:  # the same model: its provenance tags stay
            values = {k: v for k, v in carried.items() if k.startswith(SUITE_TAGS)}
        else:
            origin = model_origin(model_uri, model.local_dir)
            values = suite_labels.suite_tags(model_uri, model.digest, origin)
        values = suite_labels.with_user_tags(values, cfg.tags)
        return [{"key": k, "value": v} for k, v in values.items()]

    def _retag(self, service: dict[str, Any], labels: builtins.list[dict[str, str]]) -> None:
        """The service's tags say what it runs (TagResource overwrites), and the user's tags that
        the deploy no longer has go."""
        self.ecs.tag_resource(resourceArn=service["serviceArn"], tags=labels)
        wanted = {t["key"] for t in labels}
        stale = [
            t["key"] for t in service.get("tags") or [] if suite_labels.is_users(t["key"]) and t["key"] not in wanted
        ]
        if stale:
            self.ecs.untag_resource(resourceArn=service["serviceArn"], tagKeys=stale)

    def _register(self, name: str, cfg: ecs_config.EcsConfig, model: Any, labels: builtins.list[dict[str, str]]) -> str:
        request = spec.task_definition(
            name, cfg, images.image_uri(self.clients, cfg.image), model.s3_uri, self.clients.region, labels
        )
        return self.ecs.register_task_definition(**request)["taskDefinition"]["taskDefinitionArn"]

    def task_definition(self, arn: str) -> dict[str, Any]:
        return self.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])

    def revisions(self, family: str, status: str = "ACTIVE") -> builtins.list[str]:
        arns = self._paginate("list_task_definitions", "taskDefinitionArns", familyPrefix=family, status=status)
        return [
            arn for arn in arns if arn.split("/")[-1].rsplit(":", 1)[0] == family
        ]  # familyPrefix is a prefix on AWS

    def delete_revisions(self, arns: builtins.list[str]) -> None:
        for arn in arns:
            if self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "ACTIVE":
                self.ecs.deregister_task_definition(taskDefinition=arn)
        for start in range(0, len(arns), 10):  # DeleteTaskDefinitions takes up to 10
            self.ecs.delete_task_definitions(taskDefinitions=arns[start : start + 10])

    def _scale(self, cluster: str, name: str, cfg: ecs_config.EcsConfig) -> None:
        _ecs_scaling.apply(self.clients, cluster, name, cfg)

    def _paginate(self, operation: str, key: str, **kwargs: Any) -> builtins.list[str]:
        return [item for page in self.ecs.get_paginator(operation).paginate(**kwargs) for item in page[key]]

    def journal(self, name: str, cfg: ecs_config.EcsConfig) -> Journal:
        """The undo steps of one operation on service ``name``."""

        def delete_service(resource: str) -> None:
            cluster, service = resource.split("/", 1)
            self.ecs.delete_service(cluster=cluster, service=service, force=True)
            self._wait_inactive(cluster, service, cfg.timeout_seconds)

        return Journal(
            {
                "service": delete_service,
                "task_definition": lambda arn: self.delete_revisions([arn]),
                "log_group": lambda group: self.clients("logs").delete_log_group(logGroupName=group),
                "archive": lambda uri: s3uri.delete_object(self.clients("s3"), uri),
                "scaling": lambda resource: _ecs_scaling.remove(self.clients, *resource.split("/", 1)),
            },
            deployment=name,
        )

    def _wait_inactive(self, cluster: str, name: str, timeout_seconds: int) -> None:
        """botocore's ``services_inactive`` waiter, bounded by the config's timeout (not days)."""
        delay = wait_delay()
        self.ecs.get_waiter("services_inactive").wait(
            cluster=cluster,
            services=[name],
            WaiterConfig={"Delay": delay, "MaxAttempts": max(math.ceil(timeout_seconds / delay), 1)},
        )


def _cluster_of(name: str) -> str | None:
    return name.split("/", 1)[0] if "/" in name else None


def _check_name(name: str) -> None:
    keys.check_name(
        name,
        ecs_config.ECS_NAME,
        "deployment name",
        "it breaks ECS's service naming rule",
        "1 to 255 letters, digits, hyphens and underscores, starting with a letter or digit",
        "churn-prod",
    )

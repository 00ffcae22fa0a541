"""The ECS implementation of :class:`mlflow_plugins.deploy.contract.Target`: a Fargate service,
named ``NAME`` or ``CLUSTER/NAME``. What serves is the primary deployment's task definition,
whose tags (immutable, like a SageMaker endpoint config's) name the model and its provenance."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from mlflow_plugins.deploy.common import archives, keys, s3uri, stack
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.plan import DELETE, Change, Plan, plan_of, refuse_dry_run_delete, require_model_uri
from mlflow_plugins.deploy.contract import FAILED, SERVING, Live
from mlflow_plugins.deploy.ecs import _export, _stack
from mlflow_plugins.deploy.ecs import _spec as spec
from mlflow_plugins.deploy.ecs._deployer import EcsDeployer, stderr
from mlflow_plugins.deploy.ecs._scaling import resource_label
from mlflow_plugins.deploy.ecs._wait import wait_for_deployment
from mlflow_plugins.deploy.ecs.config import DEFAULT_TIMEOUT, EcsConfig, parse
from mlflow_plugins.errors import InvalidValue, MissingSetting, ResourceConflict, ResourceNotFound

ROLLOUT_STATUS = {"COMPLETED": SERVING, "FAILED": FAILED}


class EcsTarget:
    kind = "ecs"

    def __init__(self, clients: Any, say: Any = stderr) -> None:
        self.clients = clients
        self.say = say
        self.deployer = EcsDeployer(clients, say)

    def parse(self, config: Mapping[str, Any] | EcsConfig | None) -> EcsConfig:
        return parse(config)

    def observe(self, name: str, config: Any) -> Live:
        found = self._service(name, config)
        if found is None:
            return Live(exists=False)
        cluster, service = found
        primary = _primary(service)
        if primary is not None and primary.get("rolloutState") == "IN_PROGRESS":
            self.say(f"ECS service {cluster}/{service['serviceName']} is deploying; waiting for it to settle")
            timeout = self.parse(config).timeout_seconds if config else DEFAULT_TIMEOUT
            try:
                service = wait_for_deployment(
                    self.deployer.ecs, cluster, service["serviceName"], primary["id"], timeout, self.say
                )
            except Exception:  # noqa: BLE001 - the state is read again below
                found = self._service(name, config)
                if found is None:
                    return Live(exists=False)
                cluster, service = found
            primary = _primary(service)
        definition = self.deployer.task_definition(service["taskDefinition"])
        # The service's tags name the model once its deployment completed (an update that keeps the
        # task definition, the same model, registers no new revision, so its tags would be stale).
        tags = suite_labels.as_dict(service.get("tags") or [], "key", "value")
        state = (primary or {}).get("rolloutState")
        return Live(
            exists=True,
            status=ROLLOUT_STATUS.get(state or "", state),
            arn=service["serviceArn"],
            config=service["taskDefinition"],
            registered_model=tags.get(suite_labels.REGISTERED_MODEL),
            version=tags.get(suite_labels.MODEL_VERSION),
            failure_reason=(primary or {}).get("rolloutStateReason"),
            models=(spec.model_uri_of(definition["taskDefinition"]),),
        )

    def plan(self, name: str, model_uri: str | None, config: Any) -> Plan:
        """What create (the service absent, or its last deployment Failed: converge replaces it)
        or update would change, with reads only."""
        found = self._service(name, config)
        failed = found is not None and (_primary(found[1]) or {}).get("rolloutState") == "FAILED"
        if keys.via(config) == "cloudformation":
            where, named = self._where(name, config, found)
            return _stack.EcsStack(self.deployer).plan(where, named, require_model_uri(model_uri), config)
        _refuse_if_stacked(found)
        if found is not None and not failed:
            return self.deployer.plan(name, model_uri, config)
        if model_uri is None:
            raise MissingSetting(
                name="model URI (-m)", allowed="any MLflow model URI", fix="Pass -m models:/name/version."
            )
        cluster, service = _split(name, config)
        created = self.deployer.plan_create(service, model_uri, self._with_cluster(config, cluster))
        if found is None:
            return created
        reason = (_primary(found[1]) or {}).get("rolloutStateReason") or "its last deployment failed"
        gone = Change(DELETE, "ECS service", f"{found[0]}/{service}", (f"it is Failed ({reason})",))
        return plan_of(self.kind, created.deployment, (gone, *created.changes))

    def create(self, name: str, model_uri: str, config: Any) -> dict[str, Any]:
        cluster, service = _split(name, config)
        config = self._with_cluster(config, cluster)
        if keys.dry_run(config):  # it fails as create would on a service that exists
            if keys.via(config) != "cloudformation" and self._service(name, config) is not None:
                raise ResourceConflict(
                    kind="ECS service",
                    name=name,
                    fix="Use `mlflow deployments update -t ecs`, or delete it first.",
                )
            return self.plan(name, model_uri, config).answer()
        if keys.via(config) == "cloudformation":
            where, service = self._where(name, config, None)
            return _stack.EcsStack(self.deployer).deploy(where, service, model_uri, config, create=True)
        return self.deployer.create(service, model_uri, config)

    def update(self, name: str, model_uri: str | None, config: Any) -> dict[str, Any]:
        if keys.dry_run(config):  # an update updates, even a Failed service (converge replaces it)
            plan = self.plan if keys.via(config) == "cloudformation" else self.deployer.plan
            return plan(name, model_uri, config).answer()
        found = self._service(name, config)
        if keys.via(config) == "cloudformation":
            cluster, service = self._where(name, config, found)
            return _stack.EcsStack(self.deployer).deploy(
                cluster, service, require_model_uri(model_uri), config, create=False
            )
        _refuse_if_stacked(found)
        return self.deployer.update(name, model_uri, config)

    def _where(self, name: str, config: Any, found: tuple[str, dict[str, Any]] | None) -> tuple[str, str]:
        """The cluster and service name of ``[CLUSTER/]NAME``: the live service's, else the
        name's or the config's cluster (``default`` by default)."""
        if found is not None:
            return found[0], found[1]["serviceName"]
        cluster, service = _split(name, config)
        return cluster or "default", service

    def export(self, name: str, model_uri: str, config: Any, shared_stack: str | None = None) -> dict[str, Any]:
        """A CloudFormation template of what create would make (the archive is uploaded)."""
        cluster, service = _split(name, config)
        cfg = self.parse(self._with_cluster(config, cluster))
        folder = f"{archives.EXPORTS}/ecs/{cfg.cluster}/{service}"
        made = _export.from_config(self.deployer, service, model_uri, cfg, folder)
        return _export.template(service, *made, shared_stack, self._resource_label(made[0]))

    def export_live(self, name: str, config: Any = None, shared_stack: str | None = None) -> dict[str, Any]:
        """A CloudFormation template of the live service ``[CLUSTER/]NAME``."""
        made = _export.from_live(self.deployer, name)
        service = name.split("/")[-1]
        return _export.template(service, *made, shared_stack, self._resource_label(made[0]))

    def _resource_label(self, cfg: EcsConfig) -> str | None:
        metric = (cfg.autoscaling or {}).get("metric")
        if metric != "ALBRequestCountPerTarget" or not cfg.target_group_arn:
            return None
        return resource_label(self.clients("elbv2"), cfg.target_group_arn)

    def delete(self, name: str, config: Any = None) -> None:
        """A stack-owned service goes with its stack (the suite's own stack only); any other
        through the API. A dry run is refused: delete has no plan."""
        refuse_dry_run_delete(config, f"mlflow deployments get -t ecs --name {name}")
        found = self._service(name, config)
        if found is not None:
            tags = {t["key"]: t["value"] for t in (found[1].get("tags") or [])}
            cluster, service = found[0], found[1]["serviceName"]
            if stack.owned(tags):
                stack.check_owner(
                    "ECS service", f"{cluster}/{service}", tags, _stack.stack_name(cluster, service), "cloudformation"
                )
            timeout = self.parse(config).timeout_seconds if isinstance(config, EcsConfig) else DEFAULT_TIMEOUT
            stacks = _stack.EcsStack(self.deployer)
            stacked = stack.owned(tags) or keys.via(config) == "cloudformation"
            if stacked and stacks.owner(cluster, service, timeout).stack() is not None:
                stacks.delete(cluster, service, timeout)
                return
            if keys.via(config) == "cloudformation":
                self.say(
                    f"No stack owns ECS service {cluster}/{service} (it was deployed through the API): deleting it through the API"
                )
        self.deployer.delete(name, config)

    def get(self, name: str) -> dict[str, Any]:
        return self.deployer.get(name)

    def list(self) -> builtins.list[dict[str, Any]]:
        return self.deployer.list()

    def invoke(self, name: str, body: bytes, content_type: str, options: Mapping[str, Any]) -> str:
        if options.get("TargetVariant") is not None:
            raise InvalidValue(
                name="TargetVariant",
                value=options["TargetVariant"],
                reason="an ECS service has no variants",
                allowed="no TargetVariant",
                fix="Drop the TargetVariant param.",
            )
        answer = self.deployer.invoke(name, body, content_type, options.get("via"))
        return answer.decode() if isinstance(answer, bytes) else answer

    def clean(self, name: str, live: Live, config: Any) -> builtins.list[str]:
        """Task definition revisions of the service's family (and their archives) that the live
        service does not run: what a create or update killed after RegisterTaskDefinition left."""
        family = name.split("/", 1)[-1]
        gone = []
        for arn in self.deployer.revisions(family):
            if arn != live.config:
                if live.config:
                    self.deployer.remove_revision(arn, keep=live.config)
                else:
                    archive = spec.model_uri_of(self.deployer.task_definition(arn)["taskDefinition"])
                    self.deployer.delete_revisions([arn])
                    if archive:
                        s3uri.delete_object(self.clients("s3"), archive)
                gone.append(arn)
        if gone:
            self.say(f"Deleted what an interrupted deploy of {name} left behind: {', '.join(gone)}")
        return gone

    def archive(self, name: str) -> str | None:
        found = self._service(name, None)
        if found is None:
            return None
        return spec.model_uri_of(self.deployer.task_definition(found[1]["taskDefinition"])["taskDefinition"]) or None

    def _service(self, name: str, config: Any) -> tuple[str, dict[str, Any]] | None:
        cluster, service = _split(name, config)
        try:
            return self.deployer.locate(service, cluster)
        except ResourceNotFound:
            return None

    @staticmethod
    def _with_cluster(config: Any, cluster: str | None) -> Any:
        if cluster is None:
            return config
        if isinstance(config, EcsConfig):
            return config.replace(cluster=cluster)
        return {**(config or {}), "cluster": cluster}


def _refuse_if_stacked(found: tuple[str, dict[str, Any]] | None) -> None:
    """A stack-owned service changes through its stack only (an API deploy would change the
    stack's task definition and service behind its back)."""
    if found is not None:
        tags = {t["key"]: t["value"] for t in (found[1].get("tags") or [])}
        where = f"{found[0]}/{found[1]['serviceName']}"
        stack.check_owner("ECS service", where, tags, _stack.stack_name(*where.split("/")), "api")


def _split(name: str, config: Any) -> tuple[str | None, str]:
    """``CLUSTER/NAME`` or ``NAME`` (with the config's cluster, if it names one)."""
    if "/" in name:
        cluster, service = name.split("/", 1)
        return cluster, service
    if isinstance(config, EcsConfig):
        return (config.cluster if "cluster" in config.given else None), name
    return (config or {}).get("cluster"), name


def _primary(service: dict[str, Any]) -> dict[str, Any] | None:
    return next((d for d in service.get("deployments") or [] if d["status"] == "PRIMARY"), None)

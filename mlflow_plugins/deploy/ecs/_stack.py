"""``via=cloudformation`` for ECS services: the stack ``mlflow-sagemaker-ops-ecs-<cluster>-<name>``
owns the service, changed through change sets (:mod:`mlflow_plugins.deploy.common.stack`) of
the deployment's exported template (:mod:`._export`; the archive uploaded, content-addressed).
A deployment that the circuit breaker fails rolls the stack back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mlflow_plugins.deploy.common import archives
from mlflow_plugins.deploy.common.plan import Plan
from mlflow_plugins.deploy.common.stack import EMPTY, PREFIX, StackOwner, check_owner
from mlflow_plugins.deploy.ecs import _export
from mlflow_plugins.deploy.ecs.config import EcsConfig, parse
from mlflow_plugins.errors import ResourceConflict

_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


def stack_name(cluster: str, name: str) -> str:
    """A stack name: letters, digits and hyphens, at most 128 characters."""
    return _UNSAFE.sub("-", f"{PREFIX}ecs-{cluster}-{name}")[:128]


def folder(cluster: str, name: str) -> str:
    """Where the stack's archives go: no API update or delete of the service collects them."""
    return f"{archives.STACKS}/ecs/{cluster}/{name}"


class EcsStack:
    def __init__(self, deployer: Any) -> None:
        self.deployer = deployer

    def owner(self, cluster: str, name: str, timeout_seconds: int) -> StackOwner:
        return StackOwner(
            self.deployer.clients,
            self.deployer.say,
            "ecs",
            f"{cluster}/{name}",
            stack_name(cluster, name),
            {},
            timeout_seconds,
        )

    def plan(self, cluster: str, name: str, model_uri: str, config: Mapping[str, Any] | EcsConfig | None) -> Plan:
        """The change set's changes; nothing is uploaded (the template names the archive's address)."""
        cfg, template = self._template(cluster, name, model_uri, config, upload=False)
        return self.owner(cluster, name, cfg.timeout_seconds).plan(template)

    def deploy(
        self, cluster: str, name: str, model_uri: str, config: Mapping[str, Any] | EcsConfig | None, create: bool
    ) -> dict[str, Any]:
        cfg, template = self._template(cluster, name, model_uri, config, create)
        self.owner(cluster, name, cfg.timeout_seconds).deploy(template)
        return self.deployer.get(f"{cluster}/{name}")

    def delete(self, cluster: str, name: str, timeout_seconds: int, bucket: str | None = None) -> None:
        """The stack, then the archives its deploys uploaded."""
        self.owner(cluster, name, timeout_seconds).delete()
        clients = self.deployer.clients
        archives.delete_folder(clients("s3"), bucket or archives.default_bucket(clients), folder(cluster, name))

    def _template(
        self,
        cluster: str,
        name: str,
        model_uri: str,
        config: Mapping[str, Any] | EcsConfig | None,
        create: bool = False,
        upload: bool = True,
    ) -> tuple[EcsConfig, dict[str, Any]]:
        """The config (an update keeps every setting it does not give, autoscaling too) and the
        template, once it is sure that a stack may own the service."""
        given = config.given_values() if isinstance(config, EcsConfig) else dict(config or {})
        found = self.owner(cluster, name, 60).stack()
        live = self.deployer._describe(cluster, name)
        tags = {t["key"]: t["value"] for t in live.get("tags") or []} if live is not None else None
        check_owner("ECS service", f"{cluster}/{name}", tags, stack_name(cluster, name), "cloudformation")
        if create and found is not None and found["StackStatus"] not in EMPTY:
            raise ResourceConflict(
                kind="stack", name=stack_name(cluster, name), fix="Use `mlflow deployments update`, or delete it first."
            )
        values = _export.from_live(self.deployer, f"{cluster}/{name}", copy=False)[0].given_values() if live else {}
        cfg = parse({**values, **given, "cluster": cluster})
        made = _export.from_config(self.deployer, name, model_uri, cfg, folder(cluster, name), upload)
        return cfg, _export.template(name, *made)

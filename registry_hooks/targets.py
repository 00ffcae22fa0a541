"""The registry hooks' front door to the deployment targets: each rule's target
(:func:`mlflow_plugins.deploy.make_target`: SageMaker endpoints, models on multi-model endpoints
and ECS services alike) through :mod:`mlflow_plugins.deploy`'s public contract only. A rule's
``config`` means what ``-C`` means for ``mlflow deployments`` on the same target, and a deploy is
the contract's :func:`~mlflow_plugins.deploy.converge`, as for ``mlflow deployments create -C
mode=replace``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.deploy import Live, Target, converge, make_target
from registry_hooks.policy import Rule

MUTATING_SERVICES = ("sagemaker", "cloudwatch", "application-autoscaling", "s3", "ecs", "logs", "elbv2")


class RuleTarget:
    """One rule's view of its target: the rule's deployment name and config, parsed once."""

    def __init__(self, target: Target, rule: Rule) -> None:
        self.target, self.rule = target, rule
        self.name = rule.deployment
        self.config = target.parse(rule.config or None)
        self.kind, self.clients = target.kind, target.clients

    def observe(self) -> Live:
        return self.target.observe(self.name, self.config)

    def clean(self, live: Live) -> list[str]:
        return self.target.clean(self.name, live, self.config)

    def deploy(self, live: Live, model_uri: str) -> str | None:
        """Create or update, waiting until done; the deployment's ARN."""
        done = converge(self.target, self.name, model_uri, self.config, live)
        return done.get("endpoint_arn") or done.get("service_arn")

    def delete(self) -> None:
        self.target.delete(self.name, self.config)

    def archive(self) -> str | None:
        return self.target.archive(self.name)


class Targets:
    """One set of AWS clients per (region, role), made on first use with the suite's session
    factory; every client that can change things carries the lease fence."""

    def __init__(
        self,
        say: Callable[[str], None],
        clients: Callable[[AwsSettings], Any] = make_clients,
        fence: Callable[..., None] | None = None,
    ) -> None:
        self.say = say
        self.make_clients = clients
        self.fence = fence  # a botocore before-call hook on every client that changes things
        self._made: dict[tuple[str | None, str | None], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, rule: Rule) -> RuleTarget:
        key = (
            rule.config.get("region_name") or rule.region,
            rule.config.get("assume_role_arn") or rule.assume_role_arn,
        )
        with self._lock:
            if key not in self._made:
                self._made[key] = self._make(key)
            clients = self._made[key]
        return RuleTarget(make_target(rule.kind, clients, self.say), rule)

    def _make(self, key: tuple[str | None, str | None]) -> Any:
        clients = self.make_clients(AwsSettings(region=key[0], assume_role_arn=key[1]))
        if self.fence is not None:
            for service in MUTATING_SERVICES:
                clients(service).meta.events.register("before-call", self.fence)
        return clients

"""The deployment targets a rule can name, behind one small interface for the reconciler.

``observe`` (what serves now, once any rollout in flight has settled), ``clean`` (what an
interrupted deploy left behind), ``deploy`` (create or update, waiting until done; returns the
endpoint ARN) and ``delete``. The SageMaker target is the ``-t sagemaker`` client's own logic
(:class:`mlflow_plugins.deploy._sagemaker.SageMakerDeployer`), so a rule's config means what
``-C`` means there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.deploy import _live, config as target_config
from mlflow_plugins.deploy._sagemaker import SageMakerDeployer

from registry_hooks.policy import Rule


class SageMakerTarget:
    def __init__(self, clients: Any, say: Callable[[str], None]) -> None:
        self.clients = clients
        self.deployer = SageMakerDeployer(clients, say)

    def observe(self, rule: Rule) -> _live.Live:
        return _live.observe(self.deployer, rule.endpoint, target_config.parse(rule.config))

    def clean(self, rule: Rule, live: _live.Live) -> list[str]:
        if target_config.parse(rule.config)["archive"]:
            return []  # the user keeps every model and config
        return _live.collect_orphans(self.deployer, rule.endpoint, live)

    def deploy(self, rule: Rule, live: _live.Live, model_uri: str) -> str:
        if live.exists and live.status == "Failed":  # UpdateEndpoint refuses a Failed endpoint
            self.deployer.delete(rule.endpoint, rule.config)
            live = _live.Live(exists=False)
        if live.exists:
            done = self.deployer.update(rule.endpoint, model_uri, {**rule.config, "mode": "replace"})
        else:
            done = self.deployer.create(rule.endpoint, model_uri, {**rule.config, "mode": "create"})
        return done["endpoint_arn"]

    def delete(self, rule: Rule) -> None:
        self.deployer.delete(rule.endpoint, rule.config)


class Targets:
    """One target per (region, role), made on first use with the suite's session factory."""

    def __init__(self, say: Callable[[str], None], clients: Callable[[AwsSettings], Any] = make_clients,
                 fence: Callable[..., None] | None = None) -> None:
        self.say = say
        self.make_clients = clients
        self.fence = fence  # a botocore before-call hook on every client that changes things
        self._made: dict[tuple[str | None, str | None], SageMakerTarget] = {}
        self._lock = threading.Lock()

    def __call__(self, rule: Rule) -> SageMakerTarget:
        key = (rule.config.get("region_name") or rule.region, rule.config.get("assume_role_arn") or rule.assume_role_arn)
        with self._lock:
            if key not in self._made:
                self._made[key] = self._make(key)
            return self._made[key]

    def _make(self, key: tuple[str | None, str | None]) -> SageMakerTarget:
        clients = self.make_clients(AwsSettings(region=key[0], assume_role_arn=key[1]))
        if self.fence is not None:
            for service in ("sagemaker", "cloudwatch", "application-autoscaling", "s3"):
                clients(service).meta.events.register("before-call", self.fence)
        return SageMakerTarget(clients, self.say)

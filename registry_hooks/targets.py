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
from mlflow_plugins.deploy import _live, _mme, config as target_config
from mlflow_plugins.deploy._sagemaker import SageMakerDeployer

from registry_hooks.policy import Rule


class SageMakerTarget:
    lineage_target = "sagemaker"  # the ``target`` of a deployment's lineage Action

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

    def archive(self, rule: Rule) -> str | None:
        """The S3 archive the endpoint serves (for lineage)."""
        described = self.deployer._describe(rule.endpoint)
        return _live.serving_archive(self.deployer, described["EndpointConfigName"]) if described else None


class MultiModelTarget:
    """A rule with ``multi_model_endpoint``: the model named after the deployment on that MME.
    What serves is the model's pointer; an archive no pointer names (a deploy killed between the
    upload and the pointer) is deleted by ``clean``."""

    lineage_target = _mme.LINEAGE_TARGET

    def __init__(self, clients: Any, say: Callable[[str], None]) -> None:
        self.clients = clients
        self.mme = _mme.MultiModelDeployer(clients, say)

    def observe(self, rule: Rule) -> _live.Live:
        endpoint = rule.multi_model_endpoint
        current, _, model = self.mme._live(endpoint)
        bucket, prefix = _mme._split(model["PrimaryContainer"]["ModelDataUrl"])
        pointer = self.mme._pointer(bucket, prefix, rule.name)
        if pointer is None:
            return _live.Live(exists=False)
        return _live.Live(exists=True, status="InService", arn=current["EndpointArn"], config=pointer["target_model"],
                          registered_model=pointer.get("registered_model"), version=pointer.get("model_version"))

    def clean(self, rule: Rule, live: _live.Live) -> list[str]:
        bucket, prefix = self.mme._prefix(rule.multi_model_endpoint)
        gone = []
        for page in self.mme.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{rule.name}/"):
            for item in page.get("Contents", []):
                if item["Key"][len(prefix):] != live.config:
                    self.mme.s3.delete_object(Bucket=bucket, Key=item["Key"])
                    gone.append(item["Key"])
        return gone

    def deploy(self, rule: Rule, live: _live.Live, model_uri: str) -> str:
        self.mme.add_model(rule.multi_model_endpoint, rule.name, model_uri, replace=live.exists)
        return live.arn or self.mme._live(rule.multi_model_endpoint)[0]["EndpointArn"]

    def delete(self, rule: Rule) -> None:
        self.mme.delete_model(rule.multi_model_endpoint, rule.name)

    def archive(self, rule: Rule) -> str | None:
        """The S3 archive the model's pointer names (for lineage)."""
        model = self.mme._live(rule.multi_model_endpoint)[2]
        prefix_uri = model["PrimaryContainer"]["ModelDataUrl"].rstrip("/") + "/"
        pointer = self.mme._pointer(*_mme._split(prefix_uri), rule.name)
        return prefix_uri + pointer["target_model"] if pointer else None


class Targets:
    """One target per (region, role), made on first use with the suite's session factory."""

    def __init__(self, say: Callable[[str], None], clients: Callable[[AwsSettings], Any] = make_clients,
                 fence: Callable[..., None] | None = None) -> None:
        self.say = say
        self.make_clients = clients
        self.fence = fence  # a botocore before-call hook on every client that changes things
        self._made: dict[tuple[str | None, str | None], SageMakerTarget] = {}
        self._lock = threading.Lock()

    def __call__(self, rule: Rule) -> SageMakerTarget | MultiModelTarget:
        key = (rule.config.get("region_name") or rule.region, rule.config.get("assume_role_arn") or rule.assume_role_arn)
        with self._lock:
            if key not in self._made:
                self._made[key] = self._make(key)
            single = self._made[key]
        return MultiModelTarget(single.clients, self.say) if rule.multi_model_endpoint else single

    def _make(self, key: tuple[str | None, str | None]) -> SageMakerTarget:
        clients = self.make_clients(AwsSettings(region=key[0], assume_role_arn=key[1]))
        if self.fence is not None:
            for service in ("sagemaker", "cloudwatch", "application-autoscaling", "s3"):
                clients(service).meta.events.register("before-call", self.fence)
        return SageMakerTarget(clients, self.say)

"""The SageMaker implementations of :class:`mlflow_plugins.deploy.contract.Target`: a single-model
endpoint (:class:`SageMakerTarget`) and a model on a multi-model endpoint
(:class:`MultiModelTarget`, named ``ENDPOINT/MODEL``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from mlflow_plugins.deploy.common import archives
from mlflow_plugins.deploy.contract import SERVING, Live
from mlflow_plugins.deploy.sagemaker import _live, _mme
from mlflow_plugins.deploy.sagemaker._deployer import SageMakerDeployer, Say, stderr
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig, parse
from mlflow_plugins.errors import InvalidValue


class SageMakerTarget:
    kind = "sagemaker"

    def __init__(self, clients: Any, say: Say = stderr) -> None:
        self.clients = clients
        self.deployer = SageMakerDeployer(clients, say)

    def parse(self, config: Mapping[str, Any] | SageMakerConfig | None) -> SageMakerConfig:
        return parse(config)

    def observe(self, name: str, config: Any) -> Live:
        return _live.observe(self.deployer, name, self.parse(config))

    def create(self, name: str, model_uri: str, config: Any) -> dict[str, Any]:
        return self.deployer.create(name, model_uri, self.parse(config).replace(mode="create"))

    def update(self, name: str, model_uri: str | None, config: Any) -> dict[str, Any]:
        cfg = self.parse(config)
        return self.deployer.update(name, model_uri, cfg if cfg.mode else cfg.replace(mode="replace"))

    def delete(self, name: str, config: Any = None) -> None:
        self.deployer.delete(name, self.parse(config))

    def get(self, name: str) -> dict[str, Any]:
        return self.deployer.get(name)

    def list(self) -> builtins.list[dict[str, Any]]:
        return self.deployer.list()

    def invoke(self, name: str, body: bytes, content_type: str, options: Mapping[str, Any]) -> str:
        return self.deployer.invoke(name, body, content_type, options.get("TargetVariant"))

    def clean(self, name: str, live: Live, config: Any) -> builtins.list[str]:
        cfg = self.parse(config)
        if cfg.archive:
            return []  # the user keeps every model and config
        return _live.collect_orphans(self.deployer, name, live, cfg.bucket or archives.default_bucket(self.clients))

    def archive(self, name: str) -> str | None:
        described = self.deployer.describe(name)
        return _live.serving_archive(self.deployer, described["EndpointConfigName"]) if described else None

    def exists(self, name: str) -> bool:
        return self.deployer.exists(name)


class MultiModelTarget:
    """A model on a multi-model endpoint: the deployment ``ENDPOINT/MODEL``. What serves is the
    model's pointer; an archive no pointer names (a deploy killed between the upload and the
    pointer) is deleted by ``clean``. A model has no settings of its own (``update-endpoint``
    sets the endpoint's)."""

    kind = _mme.LINEAGE_TARGET

    def __init__(self, clients: Any, say: Say = stderr) -> None:
        self.clients = clients
        self.mme = _mme.MultiModelDeployer(clients, say)

    def parse(self, config: Mapping[str, Any] | None) -> None:
        return parse_model_config(config)

    def observe(self, name: str, config: Any = None) -> Live:
        endpoint, model = split_name(name)
        current, _, container = self.mme.live(endpoint)
        bucket, prefix = _mme.split(container["PrimaryContainer"]["ModelDataUrl"])
        pointer = self.mme.pointer(bucket, prefix, model)
        if pointer is None:
            return Live(exists=False)
        return Live(
            exists=True,
            status=SERVING,
            arn=current["EndpointArn"],
            config=pointer["target_model"],
            registered_model=pointer.get("registered_model"),
            version=pointer.get("model_version"),
        )

    def create(self, name: str, model_uri: str, config: Any = None) -> dict[str, Any]:
        self.parse(config)
        return self.mme.add_model(*split_name(name), model_uri)

    def update(self, name: str, model_uri: str | None, config: Any = None) -> dict[str, Any]:
        self.parse(config)
        if model_uri is None:
            raise InvalidValue(
                name="model URI (-m)",
                value=None,
                reason="an update on a multi-model endpoint replaces the model",
                allowed="any MLflow model URI",
                fix="Pass -m models:/name/version.",
            )
        return self.mme.add_model(*split_name(name), model_uri, replace=True)

    def delete(self, name: str, config: Any = None) -> None:
        self.mme.delete_model(*split_name(name))

    def get(self, name: str) -> dict[str, Any]:
        return self.mme.get_model(*split_name(name))

    def list(self, endpoint: str | None = None) -> builtins.list[dict[str, Any]]:
        endpoints = [endpoint] if endpoint else [e["name"] for e in self.mme.list_endpoints()]
        return [model for e in endpoints for model in self.mme.list_models(e)]

    def invoke(self, name: str, body: bytes, content_type: str, options: Mapping[str, Any]) -> str:
        if options.get("TargetVariant") is not None:
            raise InvalidValue(
                name="TargetVariant",
                value=options["TargetVariant"],
                reason="a multi-model endpoint has one variant",
                allowed="no TargetVariant",
                fix="Drop the TargetVariant param.",
            )
        return self.mme.invoke(*split_name(name), body, content_type)

    def clean(self, name: str, live: Live, config: Any = None) -> builtins.list[str]:
        endpoint, model = split_name(name)
        bucket, prefix = self.mme.prefix(endpoint)
        gone = []
        for page in self.mme.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{model}/"):
            for item in page.get("Contents", []):
                if item["Key"][len(prefix) :] != live.config:
                    self.mme.s3.delete_object(Bucket=bucket, Key=item["Key"])
                    gone.append(item["Key"])
        return gone

    def archive(self, name: str) -> str | None:
        endpoint, model = split_name(name)
        container = self.mme.live(endpoint)[2]
        prefix_uri = container["PrimaryContainer"]["ModelDataUrl"].rstrip("/") + "/"
        pointer = self.mme.pointer(*_mme.split(prefix_uri), model)
        return prefix_uri + pointer["target_model"] if pointer else None


def parse_model_config(config: Mapping[str, Any] | None) -> None:
    """A model on a multi-model endpoint has no config: any key is refused, before any AWS call."""
    if config:
        raise InvalidValue(
            name="config",
            value=sorted(config),
            reason="a model on a multi-model endpoint has no settings of its own",
            allowed="no -C",
            fix="Set instance, scaling and image keys with `mlflow deployments update-endpoint`.",
        )


def split_name(name: str) -> tuple[str, str]:
    endpoint, _, model = name.partition("/")
    if not endpoint or not model:
        raise InvalidValue(
            name="deployment name",
            value=name,
            reason="a model on a multi-model endpoint is named ENDPOINT/MODEL",
            allowed="ENDPOINT/MODEL",
            fix="Pass --endpoint ENDPOINT --name MODEL.",
        )
    return endpoint, model

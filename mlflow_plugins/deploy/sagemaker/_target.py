"""The SageMaker implementations of :class:`mlflow_plugins.deploy.contract.Target`: a single-model
endpoint (:class:`SageMakerTarget`) and a model on a multi-model endpoint
(:class:`MultiModelTarget`, named ``ENDPOINT/MODEL``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_plugins.deploy.common import archives, stack
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.keys import DRY_RUN_KEY, typed_values
from mlflow_plugins.deploy.common.plan import Plan, refuse_dry_run_delete, require_model_uri
from mlflow_plugins.deploy.contract import SERVING, Live
from mlflow_plugins.deploy.sagemaker import _export, _live, _mme, _stack
from mlflow_plugins.deploy.sagemaker._deployer import SageMakerDeployer, Say, check_name, stderr
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig, parse
from mlflow_plugins.errors import InvalidValue, ResourceConflict, ResourceNotFound


class SageMakerTarget:
    kind = "sagemaker"

    def __init__(self, clients: Any, say: Say = stderr) -> None:
        self.clients = clients
        self.deployer = SageMakerDeployer(clients, say)

    def parse(self, config: Mapping[str, Any] | SageMakerConfig | None) -> SageMakerConfig:
        return parse(config)

    def observe(self, name: str, config: Any) -> Live:
        return _live.observe(self.deployer, name, self.parse(config))

    def plan(self, name: str, model_uri: str | None, config: Any) -> Plan:
        cfg = self.parse(config)
        if cfg.via == "cloudformation":
            return _stack.StackDeployer(self.deployer).plan(name, require_model_uri(model_uri), cfg)
        self._refuse_if_stacked(name)
        return self.deployer.plan(name, model_uri, cfg)

    def _refuse_if_stacked(self, name: str) -> None:
        """A stack-owned endpoint changes through its stack only (an API deploy would change the
        stack's resources behind its back, and delete its config and model after)."""
        stack.check_owner("SageMaker endpoint", name, self._tags(name), _stack.stack_name(name), "api")

    def _tags(self, name: str) -> dict[str, str] | None:
        """The live endpoint's tags (None: there is no endpoint)."""
        described = self.deployer.describe(name)
        if described is None:
            return None
        return suite_labels.as_dict(self.deployer.sagemaker.list_tags(ResourceArn=described["EndpointArn"])["Tags"])

    def create(self, name: str, model_uri: str, config: Any) -> dict[str, Any]:
        """A new endpoint (a dry run plans it, and fails as create would on one that exists)."""
        cfg = self.parse(config)
        if cfg.via == "cloudformation":
            found = _stack.StackDeployer(self.deployer).stack(name, cfg)
            if found is not None and found["StackStatus"] not in stack.EMPTY:  # a failed create's stack goes first
                raise ResourceConflict(
                    kind="stack",
                    name=f"{_stack.stack_name(name)} ({found['StackStatus']})",
                    fix="Use `mlflow deployments update`, or delete it first.",
                )
        elif cfg.dry_run and self.deployer.describe(name) is not None:
            raise ResourceConflict(
                kind="SageMaker endpoint", name=name, fix="Use `mlflow deployments update`, or delete it first."
            )
        if cfg.dry_run:
            return self.plan(name, model_uri, cfg).answer()
        if cfg.via == "cloudformation":
            return _stack.StackDeployer(self.deployer).deploy(name, model_uri, cfg)
        return self.deployer.create(name, model_uri, cfg.replace(mode="create"))

    def update(self, name: str, model_uri: str | None, config: Any) -> dict[str, Any]:
        """An update of a live endpoint (a dry run plans it, and fails as update would on none)."""
        cfg = self.parse(config)
        if cfg.dry_run:
            if cfg.via != "cloudformation" and self.deployer.describe(name) is None:
                raise ResourceNotFound(
                    kind="SageMaker endpoint", name=name, fix="Create it with `mlflow deployments create`."
                )
            return self.plan(name, model_uri, cfg).answer()
        if cfg.via == "cloudformation":
            return _stack.StackDeployer(self.deployer).deploy(name, require_model_uri(model_uri), cfg)
        self._refuse_if_stacked(name)
        return self.deployer.update(name, model_uri, cfg if cfg.mode else cfg.replace(mode="replace"))

    def export(self, name: str, model_uri: str, config: Any, shared_stack: str | None = None) -> dict[str, Any]:
        """A CloudFormation template of what create would make (the archive is uploaded)."""
        check_name(name)
        folder = f"{archives.EXPORTS}/{name}"
        return _export.template(
            _export.from_config(self.deployer, name, model_uri, self.parse(config), folder), shared_stack
        )

    def export_live(self, name: str, config: Any = None, shared_stack: str | None = None) -> dict[str, Any]:
        """A CloudFormation template of the live endpoint ``name`` (single- or multi-model)."""
        return _export.template(_export.from_live(self.deployer, name, self.parse(config)), shared_stack)

    def delete(self, name: str, config: Any = None) -> None:
        """A stack-owned endpoint goes with its stack (the suite's own stack only); any other
        through the API. A dry run is refused: delete has no plan."""
        cfg = self.parse(config)
        refuse_dry_run_delete(cfg, f"mlflow deployments get --name {name}")
        tags = self._tags(name)
        owner = (tags or {}).get(stack.OWNER_TAG)
        if owner is not None:
            stack.check_owner("SageMaker endpoint", name, tags, _stack.stack_name(name), "cloudformation")
        stacks = _stack.StackDeployer(self.deployer)
        if (owner is not None or cfg.via == "cloudformation") and stacks.stack(name, cfg) is not None:
            stacks.delete(name, cfg)
            return
        if cfg.via == "cloudformation" and tags is not None:
            self.deployer.say(
                f"No stack owns endpoint {name} (it was deployed through the API): deleting it through the API"
            )
        self.deployer.delete(name, cfg)  # no stack: an endpoint made through the API, or none (says so)

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

    def parse(self, config: Mapping[str, Any] | ModelConfig | None) -> ModelConfig:
        return parse_model_config(config)

    def plan(self, name: str, model_uri: str | None, config: Any = None) -> Plan:
        self.parse(config)
        endpoint, model = split_name(name)
        if model_uri is None:
            raise _no_model_uri()
        return self.mme.plan_model(endpoint, model, model_uri, replace=self.mme.has_model(endpoint, model))

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
        if self.parse(config).dry_run:
            return self.mme.plan_model(*split_name(name), model_uri).answer()
        return self.mme.add_model(*split_name(name), model_uri)

    def update(self, name: str, model_uri: str | None, config: Any = None) -> dict[str, Any]:
        cfg = self.parse(config)
        if model_uri is None:
            raise _no_model_uri()
        if cfg.dry_run:
            return self.mme.plan_model(*split_name(name), model_uri, replace=True).answer()
        return self.mme.add_model(*split_name(name), model_uri, replace=True)

    def export(self, name: str, model_uri: str, config: Any = None, shared_stack: str | None = None) -> dict[str, Any]:
        raise InvalidValue(
            name="deployment",
            value=name,
            reason="a model on a multi-model endpoint is an S3 object, not a CloudFormation resource",
            allowed="a single-model endpoint, an ECS service, or the multi-model endpoint itself",
            fix=f"Export the endpoint: mlflow-sagemaker-ops export --from-endpoint {name.split('/')[0]}.",
        )

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


@dataclass(frozen=True)
class ModelConfig:
    """A model on a multi-model endpoint has no settings of its own; ``dry_run`` plans only."""

    dry_run: bool = False


def parse_model_config(config: Mapping[str, Any] | ModelConfig | None) -> ModelConfig:
    """Any key but ``dry_run`` is refused, before any AWS call."""
    if isinstance(config, ModelConfig):
        return config
    other = sorted(set(config or {}) - {DRY_RUN_KEY.name})
    if other:
        raise InvalidValue(
            name="config",
            value=other,
            reason="a model on a multi-model endpoint has no settings of its own",
            allowed="no -C but dry_run",
            fix="Set instance, scaling and image keys with `mlflow deployments update-endpoint`.",
        )
    values = typed_values(config, (DRY_RUN_KEY,), "multi-model model config", "sagemaker")
    return ModelConfig(dry_run=values[DRY_RUN_KEY.name])


def _no_model_uri() -> InvalidValue:
    return InvalidValue(
        name="model URI (-m)",
        value=None,
        reason="an update on a multi-model endpoint replaces the model",
        allowed="any MLflow model URI",
        fix="Pass -m models:/name/version.",
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

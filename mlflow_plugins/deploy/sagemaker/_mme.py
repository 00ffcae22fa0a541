"""SageMaker multi-model endpoints (MME): MLflow's endpoint API for the endpoint, its deployment
API (``--endpoint E --name M``) for the models on it.

* The endpoint runs the serving runtime in multi-model mode (``Mode: MultiModel``) over the S3
  prefix ``s3://<bucket>/mlflow-sagemaker-ops/mme/<endpoint>/``; the prefix also holds
  ``_image-manifest.json`` (what the image bakes in: ``-C image_manifest=...`` from
  ``build-image``, else this environment) and one pointer per model, ``_models/<name>.json``.
* A model's archive is content-addressed under ``<name>/<digest>/model.tar.gz``; its pointer says
  which archive ``predict`` sends as ``TargetModel``. ``update`` writes the new archive, then
  the pointer, and only then deletes the old archive, so predictions keep succeeding.
* Before an upload, the model is checked against the image manifest (:mod:`._compat`).
* Instance type and count, autoscaling, alarms and tags work as on a single-model endpoint;
  ``update-endpoint`` rolls out a new endpoint config with the configured strategy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mlflow_plugins import secrets
from mlflow_plugins.deploy.common import archives as _artifacts
from mlflow_plugins.deploy.common import images, keys, s3uri
from mlflow_plugins.deploy.common.journal import Journal, outcome
from mlflow_plugins.deploy.common.labels import DEPLOYMENT_ID, MANAGED
from mlflow_plugins.deploy.common.origin import model_origin
from mlflow_plugins.deploy.common.plan import CREATE, DELETE, UPDATE, Change, Plan, changed_keys, plan_of
from mlflow_plugins.deploy.sagemaker import _compat
from mlflow_plugins.deploy.sagemaker._deployer import SageMakerDeployer, Say, check_name, require_role, stderr
from mlflow_plugins.deploy.sagemaker._requests import deployment_config, resource_name
from mlflow_plugins.deploy.sagemaker._requests import variant as variant_spec
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig, parse
from mlflow_plugins.errors import InvalidValue, ResourceConflict, ResourceNotFound, as_domain_error
from mlflow_plugins.packaging import digest, model_archive

MULTI_MODEL = "mlflow-sagemaker-ops:multi-model"
LINEAGE_TARGET = "sagemaker-mme"  # the ``target`` property of a deployment's lineage Action
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
NOT_FOR_MME = ("serverless_config", "async_inference_config")
_PREFIXES: dict[tuple[str, str], tuple[str, str]] = {}  # (region, endpoint) -> (bucket, prefix), for invoke


@dataclass(frozen=True)
class ModelRead:
    """What adding or replacing a model reads before it writes."""

    current: dict[str, Any]  # DescribeEndpoint
    bucket: str
    prefix: str  # the endpoint's model prefix
    before: dict[str, Any] | None  # the model's pointer, if it is there
    local: str  # the model's local directory
    data: bytes  # its archive
    target: str  # the archive's key under the prefix
    pointer: dict[str, Any]  # the pointer a deploy writes


def model_answer(pointer: dict[str, Any], endpoint: str, current: dict[str, Any], s3_uri: str) -> dict[str, Any]:
    """What create and update answer for a model: its pointer, and the endpoint's ARN and status
    and the archive, which lineage records of the deploy."""
    return {
        **pointer,
        "endpoint": endpoint,
        "flavor": "python_function",
        "endpoint_arn": current["EndpointArn"],
        "status": current["EndpointStatus"],
        "model_s3_uri": s3_uri,
    }


class MultiModelDeployer:
    def __init__(self, clients: Any, say: Say = stderr) -> None:
        self.base = SageMakerDeployer(clients, say)
        self.clients, self.sagemaker, self.s3, self.say = clients, self.base.sagemaker, clients("s3"), say

    # ---- the endpoint ---------------------------------------------------------------------
    def create_endpoint(self, name: str, config: dict[str, Any] | None) -> dict[str, Any]:
        cfg = parse(config, where="multi-model endpoint config")
        check_name(name)
        for key in NOT_FOR_MME:
            if getattr(cfg, key):
                raise InvalidValue(
                    name=key,
                    value=getattr(cfg, key),
                    reason="SageMaker multi-model endpoints run on instances only",
                    allowed="leave it out",
                    fix="Create a single-model endpoint for serverless or async.",
                )
        role = require_role(cfg)
        if self.base.exists(name):
            raise ResourceConflict(
                kind="SageMaker endpoint",
                name=name,
                fix="Use `mlflow deployments update-endpoint`, or delete it first.",
            )
        bucket = cfg.bucket or _artifacts.default_bucket(self.clients)
        _artifacts.ensure_bucket(self.s3, bucket, self.clients.region)
        prefix = f"{_artifacts.PREFIX}/mme/{name}/"
        manifest = cfg.image_manifest or _compat.this_environment(_installed())
        if (
            not isinstance(manifest, dict)
            or not isinstance(manifest.get("python"), str)
            or not isinstance(manifest.get("packages"), dict)
        ):
            raise InvalidValue(
                name="image_manifest",
                value=manifest,
                reason="it needs python and packages",
                allowed='{"python": "3.11", "packages": {"name": "version"}}',
                fix="Pass the image-manifest.json that build-image wrote, or leave the key out.",
            )
        self.s3.put_object(Bucket=bucket, Key=f"{prefix}_image-manifest.json", Body=json.dumps(manifest).encode())
        created = self.base.journal(name)
        try:
            cfg = self.base.auto_alarms(name, cfg, created)
            resource = self._model_and_config(name, f"s3://{bucket}/{prefix}", cfg, role, created)
            self.sagemaker.create_endpoint(
                EndpointName=name, EndpointConfigName=resource, Tags=self._labels(cfg, resource)
            )
            created.add("endpoint", name)
            self.say(f"Creating multi-model endpoint {name} ({resource}) over s3://{bucket}/{prefix}")
            self.base.wait(name, "endpoint_in_service", cfg)
            self.base.scale(name, cfg, created)
        except Exception as error:
            left = created.undo()
            try:
                s3uri.delete_prefix(self.s3, f"s3://{bucket}/{prefix}")
            except Exception as cleanup:  # noqa: BLE001 - named in the message
                left.append(f"objects under s3://{bucket}/{prefix} ({cleanup})")
            raise as_domain_error(
                error, outcome(left, "Nothing was left behind.", "run create-endpoint again")
            ) from None
        return self.get_endpoint(name)

    def update_endpoint(self, name: str, config: dict[str, Any] | None) -> dict[str, Any]:
        parse(config, where="multi-model endpoint config")  # a bad config fails before any AWS call
        current, live, model = self.live(name)
        kept = {k: v for k, v in self.base.read_live(current, live).carried.items() if k not in NOT_FOR_MME}
        cfg = parse({**kept, **(config or {})}, where="multi-model endpoint config")
        role = require_role(cfg.replace(execution_role_arn=cfg.execution_role_arn or model["ExecutionRoleArn"]))
        created = self.base.journal(name)
        try:
            cfg = self.base.auto_alarms(name, cfg, self.base.journal(name))
            resource = self._model_and_config(name, model["PrimaryContainer"]["ModelDataUrl"], cfg, role, created)
            self.sagemaker.update_endpoint(
                EndpointName=name, EndpointConfigName=resource, DeploymentConfig=deployment_config(cfg)
            )
        except Exception as error:
            left = created.undo()
            raise as_domain_error(
                error, outcome(left, "The endpoint is unchanged.", "run update-endpoint again")
            ) from None
        self.say(f"Updating multi-model endpoint {name} to {resource} ({cfg.strategy})")
        after = self.base.settle(name, resource, created, cfg, previous=live["EndpointConfigName"])
        self.sagemaker.add_tags(ResourceArn=after["EndpointArn"], Tags=[{"Key": DEPLOYMENT_ID, "Value": resource}])
        self.base.scale(name, cfg)
        self.base.retire(live, [resource], cfg)
        return self.get_endpoint(name)

    def delete_endpoint(self, name: str) -> None:
        """The endpoint, its configs and models, and every object under its prefix; a missing
        endpoint is not an error (MLflow's contract: deletion is idempotent)."""
        if not self.base.exists(name):
            return
        bucket, prefix = split(self.live(name)[2]["PrimaryContainer"]["ModelDataUrl"])
        _PREFIXES.pop((self.clients.region, name), None)
        self.base.delete(name)
        s3uri.delete_prefix(self.s3, f"s3://{bucket}/{prefix}")

    def get_endpoint(self, name: str) -> dict[str, Any]:
        current, live, model = self.live(name)
        variant = live["ProductionVariants"][0]
        return {
            "name": name,
            "endpoint_arn": current["EndpointArn"],
            "status": current["EndpointStatus"],
            "multi_model": True,
            "model_data_prefix": model["PrimaryContainer"]["ModelDataUrl"],
            "endpoint_config": live["EndpointConfigName"],
            "instance_type": variant.get("InstanceType"),
            "instance_count": variant.get("InitialInstanceCount"),
            "models": [m["name"] for m in self.list_models(name)],
        }

    def list_endpoints(self) -> list[dict[str, Any]]:
        found = []
        for page in self.sagemaker.get_paginator("list_endpoints").paginate():
            for summary in page["Endpoints"]:
                labels = {t["Key"] for t in self.sagemaker.list_tags(ResourceArn=summary["EndpointArn"])["Tags"]}
                if MULTI_MODEL in labels:
                    found.append(
                        {
                            "name": summary["EndpointName"],
                            "status": summary["EndpointStatus"],
                            "endpoint_arn": summary["EndpointArn"],
                        }
                    )
        return found

    # ---- the models on it -------------------------------------------------------------------
    def plan_model(self, endpoint: str, name: str, model_uri: str, replace: bool = False) -> Plan:
        """What :meth:`add_model` would change, with reads only: the model is checked against the
        image, its archive's digest is compared with the one its pointer names."""
        return self._read_model(endpoint, name, model_uri, replace)[0]

    def _read_model(self, endpoint: str, name: str, model_uri: str, replace: bool) -> tuple[Plan, ModelRead]:
        _check_model_name(name)
        current, _, container = self.live(endpoint)
        bucket, prefix = split(container["PrimaryContainer"]["ModelDataUrl"])
        before = self.pointer(bucket, prefix, name)
        if before is not None and not replace:
            raise ResourceConflict(
                kind=f"model on multi-model endpoint {endpoint}",
                name=name,
                fix=f"Use `mlflow deployments update --endpoint {endpoint} --name {name}`.",
            )
        if before is None and replace:
            raise ResourceNotFound(
                kind=f"model on multi-model endpoint {endpoint}",
                name=name,
                fix=f"Add it with `mlflow deployments create --endpoint {endpoint} --name {name} -m ...`.",
            )
        local = _artifacts.local_model_dir(model_uri)
        manifest = json.loads(self.s3.get_object(Bucket=bucket, Key=f"{prefix}_image-manifest.json")["Body"].read())
        _compat.check(local, manifest, model_uri)
        data = model_archive(local)
        address = digest(data)
        target = f"{name}/{address[:24]}/model.tar.gz"  # where upload_archive puts it under the prefix
        origin = model_origin(model_uri, local)
        pointer = {
            "name": name,
            "target_model": target,
            "model_uri": secrets.strip_uri(model_uri),
            "digest": address,
            "registered_model": origin.registered_model,
            "model_version": origin.version,
            "run_id": origin.run_id,
        }
        where = f"{endpoint}/{name}"
        if before is None:
            changes = [
                Change(CREATE, "S3 archive", f"s3://{bucket}/{prefix}{target}", (f"model digest {address[:12]}",)),
                Change(CREATE, "model pointer", where, ("new model on the endpoint",)),
            ]
        elif before.get("target_model") != target:
            old = str(before.get("digest", "unknown"))[:12]
            changes = [
                Change(
                    CREATE, "S3 archive", f"s3://{bucket}/{prefix}{target}", (f"model digest {old} -> {address[:12]}",)
                ),
                Change(
                    UPDATE,
                    "model pointer",
                    where,
                    (f"model digest {old} -> {address[:12]}",),
                    how="the next request loads it",
                ),
                Change(DELETE, "S3 archive", f"s3://{bucket}/{prefix}{before['target_model']}", ("replaced",)),
            ]
        else:
            reasons = changed_keys("provenance", {k: before.get(k) for k in pointer}, pointer)
            changes = [Change(UPDATE, "model pointer", where, reasons)] if reasons else []
        kept = {f"s3://{bucket}/{prefix}{target}", *(c.name for c in changes if c.resource == "S3 archive")}
        changes += [
            Change(DELETE, "S3 archive", uri, ("left by an earlier deploy",))
            for uri in self._archives(bucket, prefix, name)
            if uri not in kept
        ]
        read = ModelRead(current, bucket, prefix, before, local, data, target, pointer)
        return plan_of(LINEAGE_TARGET, where, changes), read

    def add_model(self, endpoint: str, name: str, model_uri: str, replace: bool = False) -> dict[str, Any]:
        """Run the model's plan: no change, no write; new provenance alone, the pointer; a new
        model, its archive, then the pointer, then the older archives go."""
        plan, read = self._read_model(endpoint, name, model_uri, replace)
        current, bucket, prefix, before, pointer = read.current, read.bucket, read.prefix, read.before, read.pointer
        self.say(plan.text())
        if not plan.touches("model pointer"):  # the same model: only what earlier deploys left goes
            if not plan.empty:
                self._delete_archives(bucket, prefix, name, keep=prefix + read.target)
            return model_answer(pointer, endpoint, current, f"s3://{bucket}/{prefix}{read.target}")
        uploaded = _artifacts.upload_archive(self.s3, bucket, f"mme/{endpoint}/{name}", read.data, read.local, None)
        target = uploaded.s3_uri.split(f"s3://{bucket}/{prefix}", 1)[1]  # read.target: the same address
        new_archive = uploaded.bytes_uploaded > 0 and (before is None or before["target_model"] != target)
        try:
            self.s3.put_object(Bucket=bucket, Key=_pointer_key(prefix, name), Body=json.dumps(pointer).encode())
        except Exception as error:
            undo = Journal({"archive": lambda uri: s3uri.delete_object(self.s3, uri)}, deployment=f"{endpoint}/{name}")
            if new_archive:
                undo.add("archive", uploaded.s3_uri)
            unchanged = f"Model {name} on {endpoint} is unchanged." if before else "Nothing was left behind."
            raise as_domain_error(error, outcome(undo.undo(), unchanged, "run it again")) from None
        if before is not None:  # only now, the pointer naming the new archive: the older ones go
            folder = f"s3://{bucket}/{prefix}{name}/"
            try:
                self._delete_archives(bucket, prefix, name, keep=prefix + target)
            except Exception as error:
                raise as_domain_error(
                    error,
                    f"Model {name} on {endpoint} serves the new archive now; older archives under {folder} are "
                    "left. The next update or delete of the model collects them.",
                ) from None
        self.say(
            f"{'Replaced' if before else 'Added'} model {name} on {endpoint} ({target}; uploaded {uploaded.bytes_uploaded} bytes)"
        )
        return model_answer(pointer, endpoint, current, uploaded.s3_uri)

    def delete_model(self, endpoint: str, name: str) -> None:
        bucket, prefix = self.prefix(endpoint)
        pointer = self.pointer(bucket, prefix, name)
        if pointer is None:
            raise ResourceNotFound(
                kind=f"model on multi-model endpoint {endpoint}",
                name=name,
                fix=f"See the models with `mlflow deployments list --endpoint {endpoint}`.",
            )
        archive = f"s3://{bucket}/{prefix}{pointer['target_model']}"
        try:  # the archives first (older ones a failure left too): while the pointer is there, a second delete finds the model
            self._delete_archives(bucket, prefix, name)
        except Exception as error:
            raise as_domain_error(
                error, f"Model {name} on {endpoint} is unchanged; check the message, then run delete again."
            ) from None
        try:
            self.s3.delete_object(Bucket=bucket, Key=_pointer_key(prefix, name))
        except Exception as error:
            raise as_domain_error(
                error,
                f"The archive {archive} of model {name} on {endpoint} is deleted, but its pointer "
                f"s3://{bucket}/{_pointer_key(prefix, name)} is left; run delete again.",
            ) from None

    def _archives(self, bucket: str, prefix: str, name: str) -> list[str]:
        """Every archive of model ``name`` under the endpoint's prefix."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{name}/")
        return [f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", [])]

    def _delete_archives(self, bucket: str, prefix: str, name: str, keep: str | None = None) -> None:
        """Every archive of model ``name`` under the endpoint's prefix but ``keep``."""
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{name}/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] != keep]
            if keys:
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    def get_model(self, endpoint: str, name: str) -> dict[str, Any]:
        bucket, prefix = self.prefix(endpoint)
        pointer = self.pointer(bucket, prefix, name)
        if pointer is None:
            raise ResourceNotFound(
                kind=f"model on multi-model endpoint {endpoint}",
                name=name,
                fix=f"See the models with `mlflow deployments list --endpoint {endpoint}`.",
            )
        return {**pointer, "endpoint": endpoint, "flavor": "python_function"}

    def list_models(self, endpoint: str) -> list[dict[str, Any]]:
        bucket, prefix = self.prefix(endpoint)
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}_models/"):
            for item in page.get("Contents", []):
                found.append(
                    {
                        **json.loads(self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()),
                        "endpoint": endpoint,
                    }
                )
        return sorted(found, key=lambda m: m["name"])

    def invoke(self, endpoint: str, name: str, body: bytes, content_type: str) -> str:
        """One S3 read (the model's pointer) and the invoke: the endpoint's prefix, which never
        changes while the endpoint lives, is remembered per process; a failure forgets it."""
        key = (self.clients.region, endpoint)
        try:
            if key not in _PREFIXES:
                _PREFIXES[key] = self.prefix(endpoint)
            pointer = self.pointer(*_PREFIXES[key], name)
            if pointer is None:
                raise ResourceNotFound(
                    kind=f"model on multi-model endpoint {endpoint}",
                    name=name,
                    fix=f"See the models with `mlflow deployments list --endpoint {endpoint}`.",
                )
            reply = self.clients("sagemaker-runtime").invoke_endpoint(
                EndpointName=endpoint, Body=body, ContentType=content_type, TargetModel=pointer["target_model"]
            )
        except Exception as error:
            _PREFIXES.pop(key, None)
            raise as_domain_error(
                error, f"See the endpoint with `mlflow deployments get-endpoint --endpoint {endpoint}`."
            ) from None
        return reply["Body"].read().decode()

    # ---- helpers ----------------------------------------------------------------------------
    def _model_and_config(self, name: str, prefix_uri: str, cfg: SageMakerConfig, role: str, created: Journal) -> str:
        resource = resource_name(name)
        container = {
            "Image": images.image_uri(self.clients, cfg.image_url),
            "Mode": "MultiModel",
            "ModelDataUrl": prefix_uri,
            "Environment": cfg.env or {},
        }
        self.sagemaker.create_model(
            ModelName=resource,
            ExecutionRoleArn=role,
            PrimaryContainer=container,
            Tags=self._labels(cfg, resource),
            EnableNetworkIsolation=cfg.network_isolation,
            **({"VpcConfig": cfg.vpc_config} if cfg.vpc_config else {}),
        )
        created.add("model", resource)
        config_args: dict[str, Any] = {
            "EndpointConfigName": resource,
            "ProductionVariants": [variant_spec(resource, cfg)],
            "Tags": self._labels(cfg, resource),
        }
        if cfg.data_capture_config:
            config_args["DataCaptureConfig"] = cfg.data_capture_config
        if cfg.kms_key_id:
            config_args["KmsKeyId"] = cfg.kms_key_id
        self.sagemaker.create_endpoint_config(**config_args)
        created.add("endpoint_config", resource)
        return resource

    @staticmethod
    def _labels(cfg: SageMakerConfig, resource: str) -> list[dict[str, str]]:
        values = {
            MANAGED: "true",
            MULTI_MODEL: "true",
            DEPLOYMENT_ID: resource,
            **{str(k): str(v) for k, v in (cfg.tags or {}).items()},
        }
        return [{"Key": k, "Value": v} for k, v in values.items()]

    def live(self, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """DescribeEndpoint, DescribeEndpointConfig and DescribeModel of a multi-model endpoint."""
        current = self.base.describe(name)
        if current is None:
            raise ResourceNotFound(
                kind="SageMaker endpoint", name=name, fix="Check the name with `mlflow deployments list-endpoints`."
            )
        live = self.sagemaker.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
        model = self.sagemaker.describe_model(ModelName=live["ProductionVariants"][0]["ModelName"])
        if model.get("PrimaryContainer", {}).get("Mode") != "MultiModel":
            raise InvalidValue(
                name="endpoint",
                value=name,
                reason="it is a single-model endpoint",
                allowed="a multi-model endpoint",
                fix="Leave --endpoint out to manage it, or create a multi-model endpoint with create-endpoint.",
            )
        return current, live, model

    def prefix(self, endpoint: str) -> tuple[str, str]:
        return split(self.live(endpoint)[2]["PrimaryContainer"]["ModelDataUrl"])

    def has_model(self, endpoint: str, name: str) -> bool:
        return self.pointer(*self.prefix(endpoint), name) is not None

    def pointer(self, bucket: str, prefix: str, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.s3.get_object(Bucket=bucket, Key=_pointer_key(prefix, name))["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return None


def _pointer_key(prefix: str, name: str) -> str:
    return f"{prefix}_models/{name}.json"


def split(uri: str) -> tuple[str, str]:
    """An MME's model-data prefix: (bucket, key prefix ending in /)."""
    bucket, key = s3uri.split(uri)
    return bucket, key if key.endswith("/") else key + "/"


def _check_model_name(name: str) -> None:
    keys.check_name(
        name,
        MODEL_NAME,
        "model name (--name)",
        "it becomes a path in the endpoint's S3 prefix",
        "1 to 63 letters, digits, '.', '_' and '-', starting with a letter or digit",
        "churn-v3",
    )


def _installed() -> list[str]:
    from importlib import metadata

    return sorted({d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"]})

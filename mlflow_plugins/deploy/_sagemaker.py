"""SageMaker real-time and serverless deployments: the logic behind ``-t sagemaker``.

* Names: the endpoint is the deployment name; each deploy creates a model and an endpoint config
  named ``<name>-<deployment id>`` and tags all three (managed marker, deployment id, model URI,
  model digest, suite version, and the user's tags).
* The variant name is stable across updates (``variant_name``, default ``primary``), so
  blue/green, canary, linear and rolling updates keep it, as AWS requires.
* A failed create deletes whatever it created, in reverse order, so nothing is half-created.
* An update runs UpdateEndpoint with the strategy's DeploymentConfig; when it completes, the
  previous model and config are deleted (kept with ``archive=true``); when AWS rolls it back,
  the new ones are deleted and the update fails with SageMaker's reason (the alarm named).
* Waiting uses botocore's ``endpoint_in_service`` / ``endpoint_deleted`` waiters; progress (each
  status change) is printed by a hook on the waiter's DescribeEndpoint calls.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

import mlflow_plugins
from mlflow_plugins.deploy import _alarms, _artifacts, _autoscaling
from mlflow_plugins.deploy._progress import Progress
from mlflow_plugins.deploy._requests import MANAGED, deployment_config, resource_name, resource_tags, variant as variant_spec
from mlflow_plugins.deploy.config import SAGEMAKER_NAME, parse
from mlflow_plugins.errors import (
    AwsCallFailed, InvalidValue, MissingSetting, ResourceConflict, ResourceNotFound, from_client_error,
)

WAIT_DELAY_ENV = "MLFLOW_SAGEMAKER_OPS_WAIT_DELAY"  # seconds between DescribeEndpoint polls
Say = Callable[[str], None]


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class SageMakerDeployer:
    def __init__(self, clients: Any, say: Say = stderr) -> None:
        self.clients = clients
        self.sagemaker = clients("sagemaker")
        self.say = say

    # ---- create -------------------------------------------------------------------------
    def create(self, name: str, model_uri: str, config: dict[str, Any] | None) -> dict[str, Any]:
        cfg = parse(config)
        _check_name(name)
        role = _require_role(cfg)
        if self._describe(name) is not None:
            raise ResourceConflict(kind="SageMaker endpoint", name=name,
                                   fix="Use `mlflow deployments update`, or delete it first.")
        model = self._upload(name, model_uri, cfg)
        created: list[tuple[str, str]] = []
        try:
            self._auto_alarms(name, cfg, created)
            config_name = self._model_and_config(name, model, cfg, role, model_uri, created)
            self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config_name,
                                           Tags=resource_tags(cfg, model, model_uri, config_name))
            created.append(("endpoint", name))
        except Exception as error:
            self._undo(created)
            raise _domain(error, "Nothing was left behind. Check the message, then run create again.") from None
        self.say(f"Creating endpoint {name} ({config_name}); uploaded {model.bytes_uploaded} bytes")
        if cfg["synchronous"]:
            self._wait(name, "endpoint_in_service", cfg)
            self._scale(name, cfg)
        return self.get(name)

    def _scale(self, name: str, cfg: dict[str, Any]) -> None:
        """Register autoscaling when configured; without the key, a registration survives."""
        if cfg["autoscaling"]:
            _autoscaling.apply(self.clients("application-autoscaling"), name, cfg["variant_name"], cfg["autoscaling"])
            self.say(f"Autoscaling {name}/{cfg['variant_name']}: {cfg['autoscaling']['min_capacity']} to "
                     f"{cfg['autoscaling']['max_capacity']} instances, target {cfg['autoscaling']['target']}")

    def _model_and_config(self, name: str, model: Any, cfg: dict[str, Any], role: str, model_uri: str,
                          created: list[tuple[str, str]]) -> str:
        resource = resource_name(name)
        labels = resource_tags(cfg, model, model_uri, resource)
        container = {"Image": self._image(cfg), "ModelDataUrl": model.s3_uri, "Environment": cfg["env"] or {}}
        model_args: dict[str, Any] = {"ModelName": resource, "ExecutionRoleArn": role,
                                      "PrimaryContainer": container, "Tags": labels,
                                      "EnableNetworkIsolation": cfg["network_isolation"]}
        if cfg["vpc_config"]:
            model_args["VpcConfig"] = cfg["vpc_config"]
        self.sagemaker.create_model(**model_args)
        created.append(("model", resource))
        config_args: dict[str, Any] = {"EndpointConfigName": resource, "ProductionVariants": [variant_spec(resource, cfg)],
                                       "Tags": labels}
        for key, field in (("data_capture_config", "DataCaptureConfig"), ("async_inference_config", "AsyncInferenceConfig"),
                           ("kms_key_id", "KmsKeyId")):
            if cfg[key]:
                config_args[field] = cfg[key]
        self.sagemaker.create_endpoint_config(**config_args)
        created.append(("endpoint_config", resource))
        return resource

    # ---- update -------------------------------------------------------------------------
    def update(self, name: str, model_uri: str | None, config: dict[str, Any] | None) -> dict[str, Any]:
        parse(config)  # a bad config fails before any AWS call
        current = self._describe(name)
        if current is None:
            raise ResourceNotFound(kind="SageMaker endpoint", name=name, fix="Create it with `mlflow deployments create`.")
        cfg = parse({**self._carried_over(current), **(config or {})})
        if model_uri is None:
            raise MissingSetting(name="model URI (-m)", allowed="any MLflow model URI", fix="Pass -m models:/name/version.")
        live_variants = [v["VariantName"] for v in current.get("ProductionVariants", [])]
        if cfg["strategy"] != "all_at_once" and live_variants != [cfg["variant_name"]]:
            raise InvalidValue(name="variant_name", value=cfg["variant_name"],
                               reason=f"a {cfg['strategy']} update keeps the variant names; the endpoint has {live_variants}",
                               allowed=", ".join(live_variants), fix=f"Pass -C variant_name={live_variants[0]}.")
        role = _require_role(cfg)
        model = self._upload(name, model_uri, cfg)
        created: list[tuple[str, str]] = []
        try:
            self._auto_alarms(name, cfg, [])  # the endpoint's alarms: a failed update keeps them
            config_name = self._model_and_config(name, model, cfg, role, model_uri, created)
            self.sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=config_name,
                                           DeploymentConfig=deployment_config(cfg))
        except Exception as error:
            self._undo(created)
            raise _domain(error, "The endpoint is unchanged. Check the message, then run update again.") from None
        self.say(f"Updating endpoint {name} to {config_name} ({cfg['strategy']}); uploaded {model.bytes_uploaded} bytes")
        if not cfg["synchronous"]:
            return self.get(name)
        self._wait(name, "endpoint_in_service", cfg)
        after = self.sagemaker.describe_endpoint(EndpointName=name)
        if after["EndpointConfigName"] != config_name:
            self._undo(created)
            raise AwsCallFailed(operation="UpdateEndpoint", code="RolledBack",
                                detail=after.get("FailureReason", "SageMaker rolled the update back").rstrip("."),
                                fix=f"The endpoint still serves {after['EndpointConfigName']}; fix the cause, then update again.")
        # The endpoint's tags say what it serves now (AddTags overwrites existing keys).
        self.sagemaker.add_tags(ResourceArn=after["EndpointArn"], Tags=resource_tags(cfg, model, model_uri, config_name))
        self._scale(name, cfg)
        if not cfg["archive"]:
            self._undo([("endpoint_config", current["EndpointConfigName"]), ("model", _model_of(self.sagemaker, current))])
        return self.get(name)

    def _auto_alarms(self, name: str, cfg: dict[str, Any], created: list[tuple[str, str]]) -> None:
        """With auto_alarms, create the usual alarms and add them to the rollback alarms."""
        if not cfg["auto_alarms"]:
            return
        made = _alarms.create(self.clients("cloudwatch"), name, cfg["variant_name"])
        created.append(("alarms", f"{name}/{cfg['variant_name']}"))
        cfg["alarms"] = sorted(set(cfg["alarms"] or []) | set(made))

    def _carried_over(self, current: dict[str, Any]) -> dict[str, Any]:
        """The live deployment's settings, for every key an update does not repeat (MLflow's own
        client loses data capture, env and the rest on update: mlflow/mlflow#7255, #9159)."""
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
        variant = config["ProductionVariants"][0]
        model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer", {})
        live_tags = self.sagemaker.list_tags(ResourceArn=current["EndpointArn"])["Tags"]
        kept: dict[str, Any] = {
            "variant_name": variant["VariantName"],
            "data_capture_config": config.get("DataCaptureConfig"),
            "async_inference_config": config.get("AsyncInferenceConfig"),
            "kms_key_id": config.get("KmsKeyId"),
            "env": container.get("Environment") or None,
            "image_url": container.get("Image"),
            "network_isolation": model.get("EnableNetworkIsolation", False),
            "vpc_config": model.get("VpcConfig"),
            "tags": {t["Key"]: t["Value"] for t in live_tags if not t["Key"].startswith("mlflow-sagemaker-ops:")} or None,
        }
        if "ServerlessConfig" in variant:
            kept["serverless_config"] = variant["ServerlessConfig"]
        else:
            kept.update(instance_type=variant.get("InstanceType"), instance_count=variant.get("InitialInstanceCount"))
        return {key: value for key, value in kept.items() if value is not None}

    # ---- delete, get, list --------------------------------------------------------------
    def delete(self, name: str, config: dict[str, Any] | None = None) -> None:
        cfg = parse(config)
        current = self._describe(name)
        if current is None:
            raise ResourceNotFound(kind="SageMaker endpoint", name=name, fix="Check the name with `mlflow deployments list`.")
        model = _model_of(self.sagemaker, current)
        for variant in current.get("ProductionVariants", []):
            _autoscaling.remove(self.clients("application-autoscaling"), name, variant["VariantName"])
            _alarms.delete(self.clients("cloudwatch"), name, variant["VariantName"])
        self.sagemaker.delete_endpoint(EndpointName=name)
        self.say(f"Deleting endpoint {name}")
        if cfg["synchronous"]:
            self._wait(name, "endpoint_deleted", cfg)
        self._undo([("endpoint_config", current["EndpointConfigName"]), ("model", model)])

    def get(self, name: str) -> dict[str, Any]:
        described = self._describe(name)
        if described is None:
            raise ResourceNotFound(kind="SageMaker endpoint", name=name, fix="Check the name with `mlflow deployments list`.")
        labels = {t["Key"]: t["Value"] for t in self.sagemaker.list_tags(ResourceArn=described["EndpointArn"])["Tags"]}
        return {
            "name": name, "flavor": "python_function", "endpoint_arn": described["EndpointArn"],
            "status": described["EndpointStatus"], "endpoint_config": described["EndpointConfigName"],
            "variants": [v["VariantName"] for v in described.get("ProductionVariants", [])],
            "model_uri": labels.get("mlflow-sagemaker-ops:model-uri"),
            "deployment_id": labels.get("mlflow-sagemaker-ops:deployment-id"),
            "autoscaling": [_autoscaling.registered(self.clients("application-autoscaling"), name, v["VariantName"])
                            for v in described.get("ProductionVariants", [])],
            "failure_reason": described.get("FailureReason"),
        }

    def list(self) -> list[dict[str, Any]]:
        found = []
        for page in self.sagemaker.get_paginator("list_endpoints").paginate():
            for summary in page["Endpoints"]:
                found_tags = self.sagemaker.list_tags(ResourceArn=summary["EndpointArn"])["Tags"]
                if any(t["Key"] == MANAGED for t in found_tags):
                    found.append({"name": summary["EndpointName"], "status": summary["EndpointStatus"],
                                  "endpoint_arn": summary["EndpointArn"]})
        return found

    def invoke(self, name: str, body: dict[str, Any]) -> str:
        """The endpoint's JSON answer to ``body`` (through S3 for an asynchronous endpoint)."""
        described = self._describe(name)
        if described is not None and described.get("AsyncInferenceConfig"):
            return self._invoke_async(name, body, described["AsyncInferenceConfig"])
        runtime = self.clients("sagemaker-runtime")
        try:
            reply = runtime.invoke_endpoint(EndpointName=name, Body=json.dumps(body),
                                            ContentType="application/json", Accept="application/json")
        except runtime.exceptions.ClientError as error:
            raise _domain(error, f"Check that endpoint {name} is InService and the input matches its signature.") from None
        return reply["Body"].read().decode()

    def _invoke_async(self, name: str, body: dict[str, Any], config: dict[str, Any]) -> str:
        """Upload the input next to the output path, InvokeEndpointAsync, then wait for the output
        object with botocore's object_exists waiter (the failure object ends the wait early)."""
        s3, runtime = self.clients("s3"), self.clients("sagemaker-runtime")
        output = config["OutputConfig"]["S3OutputPath"].rstrip("/")
        bucket, _, prefix = output[len("s3://"):].partition("/")
        key = f"{prefix}/inputs/{uuid.uuid4().hex}.json".lstrip("/")
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json")
        reply = runtime.invoke_endpoint_async(EndpointName=name, InputLocation=f"s3://{bucket}/{key}",
                                              ContentType="application/json", Accept="application/json")
        self.say(f"Invoked {name} asynchronously (inference {reply['InferenceId']}); waiting for {reply['OutputLocation']}")
        out_bucket, _, out_key = reply["OutputLocation"][len("s3://"):].partition("/")
        delay = float(os.environ.get(WAIT_DELAY_ENV, "15"))
        try:
            s3.get_waiter("object_exists").wait(Bucket=out_bucket, Key=out_key, WaiterConfig={"Delay": delay, "MaxAttempts": max(int(3600 / delay), 1)})
        except Exception:
            fail_bucket, _, fail_key = reply.get("FailureLocation", "s3:///")[len("s3://"):].partition("/")
            detail = s3.get_object(Bucket=fail_bucket, Key=fail_key)["Body"].read().decode() if fail_key else "no output"
            raise AwsCallFailed(operation="InvokeEndpointAsync", code="AsyncInferenceFailed", detail=detail[:2000],
                                fix="Check the input against the model's signature.") from None
        return s3.get_object(Bucket=out_bucket, Key=out_key)["Body"].read().decode()

    # ---- helpers ------------------------------------------------------------------------
    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            return self.sagemaker.describe_endpoint(EndpointName=name)
        except self.sagemaker.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException" and _is_missing(error):
                return None
            raise _domain(error, "Check your AWS credentials and region.") from None

    def _upload(self, name: str, model_uri: str, cfg: dict[str, Any]) -> Any:
        s3 = self.clients("s3")
        bucket = cfg["bucket"] or _artifacts.default_bucket(self.clients)
        _artifacts.ensure_bucket(s3, bucket, self.clients.region)
        return _artifacts.upload_model(s3, bucket, name, _artifacts.local_model_dir(model_uri), cfg["kms_key_id"])

    def _image(self, cfg: dict[str, Any]) -> str:
        if cfg["image_url"]:
            return cfg["image_url"]
        account = self.clients("sts").get_caller_identity()["Account"]
        return f"{account}.dkr.ecr.{self.clients.region}.amazonaws.com/mlflow-sagemaker-ops:{mlflow_plugins.__version__}"

    def _wait(self, name: str, waiter: str, cfg: dict[str, Any]) -> None:
        delay = float(os.environ.get(WAIT_DELAY_ENV, "15"))
        progress = Progress(self.say)
        events = self.sagemaker.meta.events
        events.register("after-call.sagemaker.DescribeEndpoint", progress)
        try:
            self.sagemaker.get_waiter(waiter).wait(
                EndpointName=name,
                WaiterConfig={"Delay": delay, "MaxAttempts": max(math.ceil(cfg["timeout_seconds"] / delay), 1)})
        except Exception as error:  # WaiterError: Failed status or timeout
            raise AwsCallFailed(operation=f"waiting for {waiter}", code=type(error).__name__, detail=str(error),
                                fix=f"See `mlflow deployments get -t sagemaker --name {name}` for the endpoint's state.") from None
        finally:
            events.unregister("after-call.sagemaker.DescribeEndpoint", progress)

    def _undo(self, created: list[tuple[str, str]]) -> None:
        for kind, resource in reversed(created):
            if not resource:
                continue
            try:
                if kind == "alarms":
                    _alarms.delete(self.clients("cloudwatch"), *resource.split("/", 1))
                    continue
                getattr(self.sagemaker, f"delete_{kind}")(**{_NAME_FIELD[kind]: resource})
            except Exception as error:  # report, keep cleaning
                self.say(f"Could not delete {kind} {resource}: {error}")


_NAME_FIELD = {"endpoint": "EndpointName", "endpoint_config": "EndpointConfigName", "model": "ModelName"}


def _model_of(sagemaker: Any, described: dict[str, Any]) -> str:
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        return config["ProductionVariants"][0]["ModelName"]
    except Exception:
        return ""


def _check_name(name: str) -> None:
    if not SAGEMAKER_NAME.match(name or ""):
        raise InvalidValue(name="deployment name", value=name, reason="it breaks SageMaker's endpoint naming rule",
                           allowed="1 to 63 letters, digits and hyphens, starting with a letter or digit",
                           fix="Pass --name churn-prod (for example).")


def _require_role(cfg: dict[str, Any]) -> str:
    if not cfg["execution_role_arn"]:
        raise MissingSetting(name="execution_role_arn", allowed="an IAM role ARN that SageMaker can assume",
                             fix="Pass -C execution_role_arn=arn:aws:iam::<account>:role/<role>.")
    return cfg["execution_role_arn"]


def _is_missing(error: Any) -> bool:
    # DescribeEndpoint reports a missing endpoint as a ValidationException; the botocore waiter
    # EndpointDeleted relies on the same code. The message is not parsed.
    return error.operation_name == "DescribeEndpoint"


def _domain(error: Exception, fix: str) -> Exception:
    if hasattr(error, "response") and "Error" in getattr(error, "response", {}):
        return from_client_error(error, fix=fix)
    return error

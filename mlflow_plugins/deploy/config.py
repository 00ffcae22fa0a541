"""The one place where deployment-target configuration is validated.

Every key of MLflow's built-in SageMaker client keeps its meaning; the suite adds rollout,
alarm and scaling keys. Values arrive as Python values (``get_deploy_client``) or as CLI strings
(``-C key=value``) and are parsed to their types: ``true``, ``True`` and ``1`` are all true.
Unknown keys, wrong types, broken SageMaker name rules and combinations AWS forbids fail here,
before any AWS call, with the key, the value and the fix. The caller's dict is never mutated.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_plugins.errors import InvalidValue, UnknownKey

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # str | int | bool | json | choice | list
    default: Any
    help: str
    example: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None
    builtin: bool = False  # a key of MLflow's own SageMaker client


KEYS: tuple[Key, ...] = (
    # MLflow's built-in keys, with the same meaning
    Key("execution_role_arn", "str", None, "IAM role SageMaker assumes to run the model (required)", "arn:aws:iam::123456789012:role/SageMakerExecutionRole", pattern=ROLE_ARN, builtin=True),
    Key("assume_role_arn", "str", None, "IAM role to assume for every AWS call of the deployment", "arn:aws:iam::123456789012:role/Deployer", pattern=ROLE_ARN, builtin=True),
    Key("bucket", "str", None, "S3 bucket for model archives; default mlflow-sagemaker-ops-<account>-<region>, created if missing", "my-models", pattern=BUCKET, builtin=True),
    Key("image_url", "str", None, "serving image; default <account>.dkr.ecr.<region>.amazonaws.com/mlflow-sagemaker-ops:<version> (see build-image)", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving:py311", builtin=True),
    Key("region_name", "str", None, "AWS region; default from AWS_REGION, AWS_DEFAULT_REGION or the profile", "eu-west-1", builtin=True),
    Key("archive", "bool", False, "keep the previous model and config after a replace (the previous model is always kept until the new one has baked)", "true", builtin=True),
    Key("instance_type", "str", "ml.m5.large", "instance type of a real-time endpoint", "ml.c5.xlarge", pattern=INSTANCE_TYPE, builtin=True),
    Key("instance_count", "int", 1, "instances of a real-time endpoint", "2", minimum=1, maximum=100, builtin=True),
    Key("vpc_config", "json", None, "VpcConfig of the SageMaker model", '{"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}', builtin=True),
    Key("data_capture_config", "json", None, "DataCaptureConfig of the endpoint config", '{"EnableCapture": true, "InitialSamplingPercentage": 10, "DestinationS3Uri": "s3://b/capture", "CaptureOptions": [{"CaptureMode": "Input"}]}', builtin=True),
    Key("synchronous", "bool", True, "wait for the endpoint to be InService (or rolled back) before returning", "false", builtin=True),
    Key("timeout_seconds", "int", 1200, "how long a synchronous call waits", "1800", minimum=1, builtin=True),
    Key("variant_name", "str", "primary", "production variant name; stable across updates (blue/green needs it)", "primary", pattern=SAGEMAKER_NAME, builtin=True),
    Key("env", "json", None, "environment variables of the serving container", '{"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}', builtin=True),
    Key("tags", "json", None, "tags for the model, the endpoint config and the endpoint", '{"team": "ml"}', builtin=True),
    Key("async_inference_config", "json", None, "AsyncInferenceConfig: makes the endpoint asynchronous", '{"OutputConfig": {"S3OutputPath": "s3://b/async"}}', builtin=True),
    Key("serverless_config", "json", None, "ServerlessConfig: makes the endpoint serverless", '{"MemorySizeInMB": 2048, "MaxConcurrency": 5}', builtin=True),
    Key("mode", "choice", None, "create: a new endpoint (fails if it exists); replace: the new model takes the variant's place; add: the new model becomes another variant (named by variant_name) beside the live ones", "replace", choices=("create", "replace", "add"), builtin=True),
    # The suite's keys
    Key("strategy", "choice", "all_at_once", "how update moves traffic", "canary", choices=("all_at_once", "canary", "linear", "rolling", "shadow")),
    Key("canary_size", "int", 10, "canary: percent of capacity that takes traffic first", "10", minimum=1, maximum=50),
    Key("linear_step_size", "int", 20, "linear and rolling: percent of capacity moved per step", "25", minimum=10, maximum=50),
    Key("bake_seconds", "int", 300, "seconds to watch alarms after each traffic step", "600", minimum=0, maximum=3600),
    Key("termination_wait_seconds", "int", 0, "seconds before the old fleet is terminated", "120", minimum=0, maximum=3600),
    Key("max_execution_seconds", "int", None, "upper bound for a whole rollout (600 to 14400)", "3600", minimum=600, maximum=14400),
    Key("alarms", "list", None, "existing CloudWatch alarms that roll the update back", "latency-high,errors-5xx"),
    Key("auto_alarms", "bool", False, "create the usual alarms (5XX errors, model latency) and remove them with the deployment", "true"),
    Key("shadow_sampling_percent", "int", 10, "shadow: percent of requests copied to the shadow variant <variant_name>-shadow; an update without -m promotes it", "20", minimum=1, maximum=100),
    Key("autoscaling", "json", None, "target tracking: min_capacity, max_capacity, target (invocations per instance), cooldowns, schedule", '{"min_capacity": 1, "max_capacity": 4, "target": 100}'),
    Key("kms_key_id", "str", None, "KMS key for the uploaded archive and the endpoint's storage", "arn:aws:kms:eu-west-1:123456789012:key/abc"),
    Key("network_isolation", "bool", False, "run the container without network access", "true"),
    Key("image_manifest", "json", None, "create-endpoint (multi-model): what the image bakes in, the image-manifest.json of build-image; default this environment", '{"python": "3.11", "packages": {"scikit-learn": "1.7.2"}}'),
)
BY_NAME = {key.name: key for key in KEYS}


def parse(config: Mapping[str, Any] | None, where: str = "sagemaker target config") -> dict[str, Any]:
    """Every key with its typed value (defaults filled in); raises on the first problem."""
    values = typed_values(config, KEYS, where, "sagemaker")
    check_combinations(values)
    return values


def typed_values(config: Mapping[str, Any] | None, keys: tuple[Key, ...], where: str, target: str) -> dict[str, Any]:
    """Every one of ``keys`` with its typed value, defaults filled in; an unknown key fails with
    the closest known one and ``mlflow deployments help -t <target>``."""
    by_name = {key.name: key for key in keys}
    given = dict(config or {})
    for name in given:
        if name not in by_name:
            close = difflib.get_close_matches(name, by_name, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            raise UnknownKey(where=where, key=name, allowed=", ".join(sorted(by_name)),
                             fix=f"{hint}Run `mlflow deployments help -t {target}` for every key.")
    values = {key.name: key.default for key in keys}
    for name, raw in given.items():
        values[name] = _typed(by_name[name], raw)
    return values


def _typed(key: Key, raw: Any) -> Any:
    if raw is None:
        return None
    value = _convert(key, raw)
    if key.kind == "choice" and value not in key.choices:
        raise _invalid(key, raw, "it is not one of the choices", ", ".join(key.choices))
    if key.kind == "int" and ((key.minimum is not None and value < key.minimum) or
                              (key.maximum is not None and value > key.maximum)):
        bounds = f"a whole number from {key.minimum:g}" + (f" to {key.maximum:g}" if key.maximum is not None else " up")
        raise _invalid(key, raw, "it is out of range", bounds)
    for item in value if key.kind == "list" else [value]:
        if key.pattern is not None and not key.pattern.match(item):
            raise _invalid(key, raw, f"{item!r} breaks the naming rule", f"values like {key.example!r}")
    return value


def _convert(key: Key, raw: Any) -> Any:
    if key.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        raise _invalid(key, raw, "it is not a boolean", "true, false, 1, 0")
    if key.kind == "int":
        try:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        except (TypeError, ValueError):
            raise _invalid(key, raw, "it is not a whole number", "a whole number") from None
    if key.kind == "json":
        if isinstance(raw, (dict, list)):
            return json.loads(json.dumps(raw))  # a copy: the caller's dict is never mutated
        try:
            return json.loads(raw)
        except (TypeError, json.JSONDecodeError) as error:
            raise _invalid(key, raw, f"it is not JSON ({error})", "a JSON object") from None
    if key.kind == "list":
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        return [str(item).strip() for item in items if str(item).strip()]
    return str(raw)


def _invalid(key: Key, raw: Any, reason: str, allowed: str) -> InvalidValue:
    return InvalidValue(name=key.name, value=raw, reason=reason, allowed=allowed,
                        fix=f"Pass -C {key.name}={key.example}.")


def _forbid(name: str, value: Any, reason: str, allowed: str, fix: str) -> None:
    raise InvalidValue(name=name, value=value, reason=reason, allowed=allowed, fix=fix)


def check_combinations(values: dict[str, Any]) -> None:
    """Combinations that AWS forbids, caught before any call."""
    serverless = bool(values["serverless_config"])
    if serverless and values["vpc_config"]:
        _forbid("vpc_config", values["vpc_config"], "serverless endpoints cannot run in a VPC",
                "vpc_config with instances, or serverless_config without vpc_config", "Drop one of the two keys.")
    if serverless and values["data_capture_config"]:
        _forbid("data_capture_config", values["data_capture_config"], "serverless endpoints do not capture data",
                "data capture on instance endpoints", "Drop data_capture_config or serverless_config.")
    if serverless and values["async_inference_config"]:
        _forbid("async_inference_config", values["async_inference_config"], "asynchronous endpoints run on instances",
                "async_inference_config without serverless_config", "Drop one of the two keys.")
    if serverless and values["mode"] == "add":
        _forbid("mode", "add", "a serverless endpoint has a single variant", "create, replace",
                "Deploy the model to its own serverless endpoint.")
    if values["strategy"] == "rolling" and serverless:
        _forbid("strategy", "rolling", "AWS does not roll serverless endpoints", "all_at_once, canary, linear, shadow",
                "Use strategy=all_at_once (the default) for serverless endpoints.")
    if values["strategy"] == "shadow" and serverless:
        _forbid("strategy", "shadow", "shadow variants run on instances, not on serverless endpoints",
                "all_at_once, canary, linear", "Test the model on an instance endpoint, or use strategy=canary.")
    if values["strategy"] != "all_at_once" and values["mode"] == "add":
        _forbid("strategy", values["strategy"], "mode=add adds a variant; rollout strategies replace one",
                "strategy=all_at_once with mode=add", "Use mode=replace to roll out a new model.")
    if values["autoscaling"] is not None:
        from mlflow_plugins.deploy._autoscaling import validate

        validate(values["autoscaling"])
        if serverless:
            _forbid("autoscaling", values["autoscaling"], "serverless endpoints scale by themselves",
                    "autoscaling on instance endpoints", "Drop autoscaling, or use max concurrency in serverless_config.")
        if not values["synchronous"]:
            _forbid("autoscaling", values["autoscaling"], "a variant can be registered only once the endpoint is InService",
                    "autoscaling with synchronous=true", "Drop -C synchronous=false.")


def help_text(keys: tuple[Key, ...] = KEYS) -> str:
    """Every key with its type, default and an example (``target_help``)."""
    lines = []
    for key in keys:
        kind = f"one of {'|'.join(key.choices)}" if key.kind == "choice" else key.kind
        origin = "" if key.builtin or keys is not KEYS else " [mlflow-sagemaker-ops]"
        lines.append(f"  {key.name} ({kind}, default {key.default!r}){origin}: {key.help}. Example: -C {key.name}={key.example}")
    return "\n".join(lines)

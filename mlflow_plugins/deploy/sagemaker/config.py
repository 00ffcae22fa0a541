"""The ``-t sagemaker`` configuration: every key of MLflow's built-in SageMaker client keeps its
meaning; the suite adds rollout, alarm and scaling keys. Parsed once, at the front door, into a
:class:`SageMakerConfig`; combinations that AWS forbids fail here, before any AWS call.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_plugins.deploy.common.keys import (
    ASSUME_ROLE_KEY,
    BUCKET_KEY,
    DRY_RUN_KEY,
    EXECUTION_ROLE_KEY,
    IMAGE_KEY,
    REGION_KEY,
    VIA_KEY,
    Config,
    Key,
    build,
    forbid,
    help_text,
    typed_values,
)

SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # matched against the whole name

KEYS: tuple[Key, ...] = (
    # MLflow's built-in keys, with the same meaning
    EXECUTION_ROLE_KEY,
    dataclasses.replace(ASSUME_ROLE_KEY, help="IAM role to assume for every AWS call of the deployment"),
    dataclasses.replace(BUCKET_KEY, builtin=True),
    IMAGE_KEY,
    REGION_KEY,
    Key(
        "archive",
        "bool",
        False,
        "keep the previous model and config after a replace (the previous model is always kept until the new one has baked)",
        "true",
        builtin=True,
    ),
    Key(
        "instance_type",
        "str",
        "ml.m5.large",
        "instance type of a real-time endpoint",
        "ml.c5.xlarge",
        builtin=True,
        shape=("sagemaker", "ProductionVariantInstanceType"),
    ),
    Key("instance_count", "int", 1, "instances of a real-time endpoint", "2", minimum=1, maximum=100, builtin=True),
    Key(
        "vpc_config",
        "json",
        None,
        "VpcConfig of the SageMaker model",
        '{"SecurityGroupIds": ["sg-0a1b2c3d"], "Subnets": ["subnet-0a1b2c3d"]}',
        builtin=True,
        shape=("sagemaker", "VpcConfig"),
    ),
    Key(
        "data_capture_config",
        "json",
        None,
        "DataCaptureConfig of the endpoint config",
        '{"EnableCapture": true, "InitialSamplingPercentage": 10, "DestinationS3Uri": "s3://b/capture", "CaptureOptions": [{"CaptureMode": "Input"}]}',
        builtin=True,
        shape=("sagemaker", "DataCaptureConfig"),
    ),
    Key(
        "synchronous",
        "bool",
        True,
        "wait for the endpoint to be InService (or rolled back) before returning",
        "false",
        builtin=True,
    ),
    Key("timeout_seconds", "int", 1200, "how long a synchronous call waits", "1800", minimum=1, builtin=True),
    Key(
        "variant_name",
        "str",
        "primary",
        "production variant name; stable across updates (blue/green needs it)",
        "primary",
        pattern=SAGEMAKER_NAME,
        builtin=True,
    ),
    Key(
        "env",
        "json",
        None,
        "environment variables of the serving container",
        '{"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}',
        builtin=True,
        shape=("sagemaker", "EnvironmentMap"),
    ),
    Key(
        "tags", "tags", None, "tags for the model, the endpoint config and the endpoint", '{"team": "ml"}', builtin=True
    ),
    Key(
        "async_inference_config",
        "json",
        None,
        "AsyncInferenceConfig: makes the endpoint asynchronous",
        '{"OutputConfig": {"S3OutputPath": "s3://b/async"}}',
        builtin=True,
        shape=("sagemaker", "AsyncInferenceConfig"),
    ),
    Key(
        "serverless_config",
        "json",
        None,
        "ServerlessConfig: makes the endpoint serverless",
        '{"MemorySizeInMB": 2048, "MaxConcurrency": 5}',
        builtin=True,
        shape=("sagemaker", "ProductionVariantServerlessConfig"),
    ),
    Key(
        "mode",
        "choice",
        None,
        "create: a new endpoint (fails if it exists); replace: the new model takes the variant's place; add: the new model becomes another variant (named by variant_name) beside the live ones",
        "replace",
        choices=("create", "replace", "add"),
        builtin=True,
    ),
    # The suite's keys
    Key(
        "strategy",
        "choice",
        "all_at_once",
        "how update moves traffic",
        "canary",
        choices=("all_at_once", "canary", "linear", "rolling", "shadow"),
    ),
    Key("canary_size", "int", 10, "canary: percent of capacity that takes traffic first", "10", minimum=1, maximum=50),
    Key(
        "linear_step_size",
        "int",
        20,
        "linear and rolling: percent of capacity moved per step",
        "25",
        minimum=10,
        maximum=50,
    ),
    Key("bake_seconds", "int", 300, "seconds to watch alarms after each traffic step", "600", minimum=0, maximum=3600),
    Key(
        "termination_wait_seconds",
        "int",
        0,
        "seconds before the old fleet is terminated",
        "120",
        minimum=0,
        maximum=3600,
    ),
    Key(
        "max_execution_seconds",
        "int",
        None,
        "upper bound for a whole rollout (600 to 14400)",
        "3600",
        minimum=600,
        maximum=14400,
    ),
    Key("alarms", "list", None, "existing CloudWatch alarms that roll the update back", "latency-high,errors-5xx"),
    Key(
        "auto_alarms",
        "bool",
        False,
        "create the usual alarms (5XX errors, model latency) and remove them with the deployment",
        "true",
    ),
    Key(
        "shadow_sampling_percent",
        "int",
        10,
        "shadow: percent of requests copied to the shadow variant <variant_name>-shadow; an update without -m promotes it",
        "20",
        minimum=1,
        maximum=100,
    ),
    Key(
        "autoscaling",
        "json",
        None,
        "target tracking: min_capacity, max_capacity, target (invocations per instance), cooldowns, schedule",
        '{"min_capacity": 1, "max_capacity": 4, "target": 100}',
    ),
    Key(
        "kms_key_id",
        "str",
        None,
        "KMS key for the uploaded archive and the endpoint's storage",
        "arn:aws:kms:eu-west-1:123456789012:key/abc",
    ),
    Key("network_isolation", "bool", False, "run the container without network access", "true"),
    Key(
        "image_manifest",
        "json",
        None,
        "create-endpoint (multi-model): what the image bakes in, the image-manifest.json of build-image; default this environment",
        '{"python": "3.11", "packages": {"scikit-learn": "1.7.2"}}',
    ),
    DRY_RUN_KEY,
    VIA_KEY,
)
BY_NAME = {key.name: key for key in KEYS}


@dataclass(frozen=True)
class SageMakerConfig(Config):
    execution_role_arn: str | None
    assume_role_arn: str | None
    bucket: str | None
    image_url: str | None
    region_name: str | None
    archive: bool
    instance_type: str
    instance_count: int
    vpc_config: dict[str, Any] | None
    data_capture_config: dict[str, Any] | None
    synchronous: bool
    timeout_seconds: int
    variant_name: str
    env: dict[str, str] | None
    tags: dict[str, str] | None
    async_inference_config: dict[str, Any] | None
    serverless_config: dict[str, Any] | None
    mode: str | None
    strategy: str
    canary_size: int
    linear_step_size: int
    bake_seconds: int
    termination_wait_seconds: int
    max_execution_seconds: int | None
    alarms: list[str] | None
    auto_alarms: bool
    shadow_sampling_percent: int
    autoscaling: dict[str, Any] | None
    kms_key_id: str | None
    network_isolation: bool
    image_manifest: dict[str, Any] | None
    dry_run: bool
    via: str


def parse(
    config: Mapping[str, Any] | SageMakerConfig | None, where: str = "sagemaker target config"
) -> SageMakerConfig:
    """Every key with its typed value (defaults filled in); raises on the first problem."""
    if isinstance(config, SageMakerConfig):
        return config
    values = typed_values(config, KEYS, where, "sagemaker")
    check_combinations(values)
    return build(SageMakerConfig, values, config)


def check_combinations(values: dict[str, Any]) -> None:
    """Combinations that AWS forbids, caught before any call."""
    serverless = bool(values["serverless_config"])
    if serverless and values["vpc_config"]:
        forbid(
            "vpc_config",
            values["vpc_config"],
            "serverless endpoints cannot run in a VPC",
            "vpc_config with instances, or serverless_config without vpc_config",
            "Drop one of the two keys.",
        )
    if serverless and values["data_capture_config"]:
        forbid(
            "data_capture_config",
            values["data_capture_config"],
            "serverless endpoints do not capture data",
            "data capture on instance endpoints",
            "Drop data_capture_config or serverless_config.",
        )
    if serverless and values["async_inference_config"]:
        forbid(
            "async_inference_config",
            values["async_inference_config"],
            "asynchronous endpoints run on instances",
            "async_inference_config without serverless_config",
            "Drop one of the two keys.",
        )
    if serverless and values["mode"] == "add":
        forbid(
            "mode",
            "add",
            "a serverless endpoint has a single variant",
            "create, replace",
            "Deploy the model to its own serverless endpoint.",
        )
    if values["via"] == "cloudformation" and (values["strategy"] == "shadow" or values["mode"] == "add"):
        forbid(
            "via",
            "cloudformation",
            "a stack's template describes the endpoint whole; a shadow or an added variant is a change to the live one",
            "via=api with strategy=shadow or mode=add (on an endpoint no stack owns)",
            "Test the challenger on an endpoint of its own (a stack-owned endpoint takes no shadow), or use strategy=canary.",
        )
    if values["strategy"] == "rolling" and serverless:
        forbid(
            "strategy",
            "rolling",
            "AWS does not roll serverless endpoints",
            "all_at_once, canary, linear, shadow",
            "Use strategy=all_at_once (the default) for serverless endpoints.",
        )
    if values["strategy"] == "shadow" and serverless:
        forbid(
            "strategy",
            "shadow",
            "shadow variants run on instances, not on serverless endpoints",
            "all_at_once, canary, linear",
            "Test the model on an instance endpoint, or use strategy=canary.",
        )
    if values["strategy"] != "all_at_once" and values["mode"] == "add":
        forbid(
            "strategy",
            values["strategy"],
            "mode=add adds a variant; rollout strategies replace one",
            "strategy=all_at_once with mode=add",
            "Use mode=replace to roll out a new model.",
        )
    if values["autoscaling"] is not None:
        from mlflow_plugins.deploy.sagemaker._autoscaling import validate

        validate(values["autoscaling"])
        if serverless:
            forbid(
                "autoscaling",
                values["autoscaling"],
                "serverless endpoints scale by themselves",
                "autoscaling on instance endpoints",
                "Drop autoscaling, or use max concurrency in serverless_config.",
            )
        if not values["synchronous"]:
            forbid(
                "autoscaling",
                values["autoscaling"],
                "a variant can be registered only once the endpoint is InService",
                "autoscaling with synchronous=true",
                "Drop -C synchronous=false.",
            )


def sagemaker_help() -> str:
    return help_text(KEYS, mark_suite_keys=True)

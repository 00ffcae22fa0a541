"""The batch transform configuration: every parameter of MLflow's built-in
``mlflow.sagemaker.deploy_transform_job`` under its own name and meaning, plus every other
CreateTransformJob setting. Parsed once into a :class:`BatchConfig`; what AWS would refuse fails
here, before any AWS call, with the key, the value, what is allowed and the fix.
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
    EXECUTION_ROLE_KEY,
    IMAGE_KEY,
    REGION_KEY,
    Config,
    Key,
    build,
    forbid,
    help_text,
    typed_values,
)
from mlflow_plugins.errors import MissingSetting

JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?")
MAX_PAYLOAD_MB = 100  # AWS: MaxPayloadInMB at most 100, and MaxConcurrentTransforms * MaxPayloadInMB too

KEYS: tuple[Key, ...] = (
    # MLflow's built-in deploy_transform_job parameters, with the same meaning
    Key(
        "job_name",
        "str",
        None,
        "transform job name, unique in the account and region; default: the registered model and version (or model), then the UTC time",
        "churn-scores-2026-12-01",
        pattern=JOB_NAME,
        builtin=True,
    ),
    Key(
        "s3_input_data_type",
        "choice",
        "S3Prefix",
        "S3Prefix: every object under s3_input_uri; ManifestFile: s3_input_uri is a manifest listing the objects",
        "S3Prefix",
        choices=("S3Prefix", "ManifestFile"),
        builtin=True,
    ),
    Key(
        "s3_input_uri",
        "str",
        None,
        "input prefix or manifest (required)",
        "s3://my-data/scoring/",
        pattern=S3_URI,
        builtin=True,
    ),
    Key(
        "content_type",
        "str",
        "text/csv",
        "media type of the input records: text/csv, application/json or application/jsonlines",
        "application/jsonlines",
        builtin=True,
    ),
    Key(
        "s3_output_path",
        "str",
        None,
        "where <input object>.out is written (required)",
        "s3://my-data/scores/",
        pattern=S3_URI,
        builtin=True,
    ),
    Key("compression_type", "choice", "None", "input compression", "Gzip", choices=("None", "Gzip"), builtin=True),
    Key(
        "split_type",
        "choice",
        "Line",
        "Line: each line is a record; None: each object is one record (RecordIO and TFRecord are binary formats the "
        "serving runtime does not read)",
        "None",
        choices=("Line", "None"),
        builtin=True,
    ),
    Key(
        "accept",
        "str",
        "text/csv",
        "media type of the answers: text/csv, application/json or application/jsonlines",
        "application/jsonlines",
        builtin=True,
    ),
    Key(
        "assemble_with",
        "choice",
        "Line",
        "Line: one answer a line; None: answers concatenated",
        "None",
        choices=("Line", "None"),
        builtin=True,
    ),
    Key(
        "input_filter",
        "str",
        "$",
        "JSONPath selecting what of each record the model gets",
        "$[1:]",
        builtin=True,
        shape=("sagemaker", "JsonPath"),
    ),
    Key(
        "output_filter",
        "str",
        "$",
        "JSONPath selecting what of each joined record is written",
        "$[0,-1]",
        builtin=True,
        shape=("sagemaker", "JsonPath"),
    ),
    Key(
        "join_resource",
        "choice",
        "None",
        "Input: write each input record joined with its answer",
        "Input",
        choices=("None", "Input"),
        builtin=True,
    ),
    dataclasses.replace(
        EXECUTION_ROLE_KEY,
        help="IAM role SageMaker assumes to run the model (needed when a SageMaker model must be created)",
    ),
    dataclasses.replace(ASSUME_ROLE_KEY, help="IAM role to assume for every AWS call of the job"),
    dataclasses.replace(BUCKET_KEY, builtin=True),
    IMAGE_KEY,
    REGION_KEY,
    Key(
        "instance_type",
        "str",
        "ml.m4.xlarge",
        "instance type (MLflow's default)",
        "ml.m5.xlarge",
        builtin=True,
        shape=("sagemaker", "TransformInstanceType"),
    ),
    Key(
        "instance_count",
        "int",
        1,
        "instances; input objects are shared out among them by S3 key",
        "2",
        minimum=1,
        maximum=100,
        builtin=True,
    ),
    Key(
        "vpc_config",
        "json",
        None,
        "VpcConfig of the SageMaker model",
        '{"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}',
        builtin=True,
        shape=("sagemaker", "VpcConfig"),
    ),
    Key(
        "flavor",
        "choice",
        "python_function",
        "the flavor that serves the model",
        "python_function",
        choices=("python_function",),
        builtin=True,
    ),
    Key(
        "archive",
        "bool",
        True,
        "keep the SageMaker model and archive this job made, so the next job of the model reuses them (MLflow's "
        "default is false); a deployment's model is never deleted",
        "false",
        builtin=True,
    ),
    Key("synchronous", "bool", True, "wait for the job to end", "false", builtin=True),
    Key("timeout_seconds", "int", 1200, "how long to wait for the job", "3600", minimum=1, builtin=True),
    # CreateTransformJob settings that MLflow's client does not offer
    Key(
        "batch_strategy",
        "choice",
        None,
        "MultiRecord: as many lines a request as max_payload_mb allows; SingleRecord: one record a request; "
        "default MultiRecord with split_type=Line, else SingleRecord",
        "SingleRecord",
        choices=("MultiRecord", "SingleRecord"),
    ),
    Key("max_payload_mb", "int", 6, "largest request in MB (0: no limit)", "1", minimum=0, maximum=MAX_PAYLOAD_MB),
    Key(
        "max_concurrent_transforms",
        "int",
        None,
        "requests in flight an instance (AWS's default: 1 for this container)",
        "4",
        minimum=0,
    ),
    Key(
        "invocations_timeout_seconds",
        "int",
        None,
        "time a request may take (ModelClientConfig; AWS's default 600)",
        "120",
        minimum=1,
        maximum=3600,
    ),
    Key(
        "invocations_max_retries",
        "int",
        None,
        "retries of a failed request (ModelClientConfig; AWS's default 3)",
        "1",
        minimum=0,
        maximum=3,
    ),
    Key(
        "env",
        "json",
        None,
        "environment variables of the job's containers",
        '{"MLFLOW_SAGEMAKER_OPS_WORKERS": "2"}',
        shape=("sagemaker", "TransformEnvironmentMap"),
    ),
    Key(
        "volume_kms_key_id",
        "str",
        None,
        "KMS key for the instances' storage volumes",
        "arn:aws:kms:eu-west-1:123456789012:key/abcd",
        shape=("sagemaker", "KmsKeyId"),
    ),
    Key(
        "output_kms_key_id",
        "str",
        None,
        "KMS key that encrypts the output objects",
        "arn:aws:kms:eu-west-1:123456789012:key/abcd",
        shape=("sagemaker", "KmsKeyId"),
    ),
    Key(
        "data_capture_config",
        "json",
        None,
        "BatchDataCaptureConfig: capture the job's inputs and outputs",
        '{"DestinationS3Uri": "s3://my-data/capture/"}',
        shape=("sagemaker", "BatchDataCaptureConfig"),
    ),
    Key(
        "experiment_config",
        "json",
        None,
        "ExperimentConfig: the SageMaker experiment and trial to associate",
        '{"ExperimentName": "churn"}',
        shape=("sagemaker", "ExperimentConfig"),
    ),
    Key("tags", "tags", None, "tags on the job (and on a model it makes)", '{"team": "ml"}'),
)
BY_NAME = {key.name: key for key in KEYS}
REQUIRED = ("s3_input_uri", "s3_output_path")


@dataclass(frozen=True, kw_only=True)
class BatchConfig(Config):
    job_name: str | None
    s3_input_data_type: str
    s3_input_uri: str
    content_type: str
    s3_output_path: str
    compression_type: str
    split_type: str
    accept: str
    assemble_with: str
    input_filter: str
    output_filter: str
    join_resource: str
    execution_role_arn: str | None
    assume_role_arn: str | None
    bucket: str | None
    image_url: str | None
    region_name: str | None
    instance_type: str
    instance_count: int
    vpc_config: dict[str, Any] | None
    flavor: str
    archive: bool
    synchronous: bool
    timeout_seconds: int
    batch_strategy: str  # resolved by parse: never None
    max_payload_mb: int
    max_concurrent_transforms: int | None
    invocations_timeout_seconds: int | None
    invocations_max_retries: int | None
    env: dict[str, str] | None
    volume_kms_key_id: str | None
    output_kms_key_id: str | None
    data_capture_config: dict[str, Any] | None
    experiment_config: dict[str, Any] | None
    tags: dict[str, Any] | None


def parse(config: Mapping[str, Any] | BatchConfig | None) -> BatchConfig:
    """A :class:`BatchConfig` from a dict of key values (typed or CLI strings)."""
    if isinstance(config, BatchConfig):
        return config
    values = typed_values(config, KEYS, "batch transform", "batch", "mlflow-sagemaker-ops batch-transform --help")
    if values["batch_strategy"] is None:  # MLflow's client sends none: batches where records are lines
        values["batch_strategy"] = "MultiRecord" if values["split_type"] == "Line" else "SingleRecord"
    for name in REQUIRED:
        if not values[name]:
            raise MissingSetting(
                name=name,
                allowed=f"an S3 URI such as {BY_NAME[name].example}",
                fix=f"Pass --{name.replace('_', '-').replace('s3-', '')} (or -C {name}=...).",
            )
    check_combinations(values)
    return build(BatchConfig, values, config)


def check_combinations(values: dict[str, Any]) -> None:
    per_record = values["join_resource"] == "Input" or any(
        values[k] not in ("$", "") for k in ("input_filter", "output_filter")
    )
    if values["split_type"] == "None" and values["batch_strategy"] == "MultiRecord":
        forbid(
            "batch_strategy",
            "MultiRecord",
            "AWS batches records only when objects are split into records, so it would have no effect "
            "(AWS accepts it and sends each object whole)",
            "batch_strategy=SingleRecord (the default) with split_type=None, or split_type=Line",
            "Drop batch_strategy, or pass -C split_type=Line.",
        )
    if values["split_type"] == "None" and per_record:
        forbid(
            "split_type",
            "None",
            "filters and joins work record by record, and records are lines",
            "split_type=Line with input_filter, output_filter or join_resource",
            "Pass -C split_type=Line, or drop the filters and the join.",
        )
    if values["batch_strategy"] == "MultiRecord" and values["content_type"].split(";")[0].strip() == "application/json":
        forbid(
            "batch_strategy",
            "MultiRecord",
            "several JSON documents in one request, one a line, are JSON Lines, not one application/json body",
            "content_type=application/jsonlines with MultiRecord, or batch_strategy=SingleRecord",
            "Pass -C content_type=application/jsonlines (records one a line), or -C batch_strategy=SingleRecord.",
        )
    if not values["archive"] and not values["synchronous"]:
        forbid(
            "archive",
            False,
            "what the job made can be deleted only once it ends, and an asynchronous command does not wait for that",
            "archive=false with a synchronous command, or archive=true with --async",
            "Drop --async, or keep the model (the default) and delete it later with `aws sagemaker delete-model`.",
        )
    concurrency = values["max_concurrent_transforms"] or 1
    if values["max_payload_mb"] * concurrency > MAX_PAYLOAD_MB:
        forbid(
            "max_payload_mb",
            values["max_payload_mb"],
            f"AWS allows max_concurrent_transforms * max_payload_mb up to {MAX_PAYLOAD_MB} "
            f"(here {concurrency} * {values['max_payload_mb']})",
            f"a product of at most {MAX_PAYLOAD_MB}",
            "Lower max_payload_mb or max_concurrent_transforms.",
        )
    if values["s3_output_path"].startswith(values["s3_input_uri"].rstrip("/")):
        forbid(
            "s3_output_path",
            values["s3_output_path"],
            f"it starts with the input prefix {values['s3_input_uri']!r} (S3 prefixes match as text), so the "
            "output would land among the inputs and the next job over the prefix would read it",
            "an S3 prefix apart from s3_input_uri",
            "Pass another --output-path.",
        )


def batch_help() -> str:
    return help_text(KEYS, mark_suite_keys=True)

"""A batch transform job of an MLflow model: find or make its SageMaker model, start the job,
wait for it, and report what it did.

* **The model.** Found by the archive's digest, or made (:mod:`._models`): a previous job's or a
  deployment's on the same image, VPC and role, else uploaded and made once.
* **The job.** CreateTransformJob with every setting of the config; a name that exists fails
  before any write. A failed start deletes the model and archive this job made.
* **Waiting.** botocore's ``transform_job_completed_or_stopped`` waiter, its polls every
  ``MLFLOW_SAGEMAKER_OPS_WAIT_DELAY`` seconds; each status change is logged. DescribeTransformJob
  reports no record counts, so progress is the status and the elapsed time.
* **A failure** ends with the job's FailureReason and its last CloudWatch log lines
  (``/aws/sagemaker/TransformJobs``).
* ``archive=false`` deletes the model and archive the job made once it ends (never a deployment's).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlflow_plugins import secrets
from mlflow_plugins.deploy.batch._models import Model, Models
from mlflow_plugins.deploy.batch.config import BatchConfig, parse
from mlflow_plugins.deploy.batch.pricing import hourly_price
from mlflow_plugins.deploy.common import archives, images, s3uri
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.origin import ModelOrigin, model_origin
from mlflow_plugins.deploy.common.progress import wait_delay
from mlflow_plugins.errors import AwsCallFailed, JobFailed, ResourceConflict, as_domain_error
from mlflow_plugins.packaging import digest, model_archive

log = logging.getLogger("mlflow_plugins.deploy.batch")
LOG_GROUP = "/aws/sagemaker/TransformJobs"
LOG_LINES = 10
Say = Callable[[str], None]


@dataclass(frozen=True)
class TransformResult:
    """What a job did. ``instance_hours`` and ``estimated_cost_usd`` are None until it ends
    (and the cost when the instance type has no price in :mod:`.pricing`)."""

    job_name: str
    job_arn: str
    status: str
    model_name: str
    model_reused: bool
    bytes_uploaded: int
    input_uri: str
    output_uri: str
    instance_type: str
    instance_count: int
    registered_model: str | None = None
    version: str | None = None
    duration_seconds: float | None = None
    instance_hours: float | None = None
    estimated_cost_usd: float | None = None
    outputs: tuple[str, ...] = ()
    failure_reason: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class BatchTransform:
    def __init__(self, clients: Any, say: Say | None = None) -> None:
        self.clients = clients
        self.sagemaker = clients("sagemaker")
        self.models = Models(clients)
        self.say = say or (lambda message: log.info("%s", message))

    def run(self, model_uri: str, config: dict[str, Any] | BatchConfig | None) -> TransformResult:
        cfg = parse(config)
        local = archives.local_pyfunc_model(model_uri)  # before any AWS call: a missing model costs nothing
        data = model_archive(local)
        address = digest(data)
        origin = model_origin(model_uri, local)
        name = cfg.job_name or default_job_name(origin, datetime.now(timezone.utc))
        self._refuse_existing(name)
        image = images.image_uri(self.clients, cfg.image_url)
        model = self.models.find_or_make(model_uri, local, data, address, image, origin, cfg, name)
        labels = suite_labels.with_user_tags(suite_labels.suite_tags(model_uri, address, origin), cfg.tags)
        try:
            arn = self.sagemaker.create_transform_job(**request(name, model.name, cfg, labels))["TransformJobArn"]
        except Exception as error:
            left = self.models.remove(model.made)
            raise as_domain_error(
                error,
                f"{'Nothing was left behind' if not left else 'Left behind: ' + ', '.join(left)}; fix the cause and run it again.",
            ) from None
        self.say(
            f"Started transform job {name} on {cfg.instance_count} x {cfg.instance_type} with model {model.name} "
            f"({'reused' if model.reused else 'made'}; uploaded {model.bytes_uploaded} bytes)"
        )
        result = TransformResult(
            job_name=name,
            job_arn=arn,
            status="InProgress",
            model_name=model.name,
            model_reused=model.reused,
            bytes_uploaded=model.bytes_uploaded,
            input_uri=cfg.s3_input_uri,
            output_uri=cfg.s3_output_path,
            instance_type=cfg.instance_type,
            instance_count=cfg.instance_count,
            registered_model=origin.registered_model,
            version=origin.version,
            tags=labels,
        )
        if not cfg.synchronous:
            return result
        try:
            described = self.wait(name, cfg)
        except JobFailed:
            self._remove_unless_kept(model, cfg)  # the job has ended
            raise
        self._remove_unless_kept(model, cfg)  # (a wait that timed out raises before: the job goes on)
        return self.finished(result, described)

    def _remove_unless_kept(self, model: Model, cfg: BatchConfig) -> None:
        if not cfg.archive and model.made:
            left = self.models.remove(model.made)
            if left:
                self.say(f"Could not delete what the job made: {', '.join(left)}; delete it by hand")

    # ---- the model -----------------------------------------------------------------------
    def _refuse_existing(self, name: str) -> None:
        try:
            self.sagemaker.describe_transform_job(TransformJobName=name)
        except self.sagemaker.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException":
                return
            raise
        raise ResourceConflict(
            kind="SageMaker transform job",
            name=name,
            fix="Job names are unique in an account and region for good: pass another --job-name, or none for a "
            "generated one.",
        )

    def wait(self, name: str, cfg: BatchConfig) -> dict[str, Any]:
        delay = wait_delay()
        progress = JobProgress(self.say, name)
        events = self.sagemaker.meta.events
        events.register("after-call.sagemaker.DescribeTransformJob", progress)
        try:
            self.sagemaker.get_waiter("transform_job_completed_or_stopped").wait(
                TransformJobName=name,
                WaiterConfig={"Delay": delay, "MaxAttempts": max(math.ceil(cfg.timeout_seconds / delay), 1)},
            )
        except Exception as error:  # WaiterError: Failed, or the timeout
            described = progress.seen or self.sagemaker.describe_transform_job(TransformJobName=name)
            if described.get("TransformJobStatus") == "Failed":
                raise JobFailed(
                    kind="SageMaker transform job",
                    name=name,
                    status="Failed",
                    reason=described.get("FailureReason", "no reason given"),
                    logs=self._log_lines(name),
                    fix="Fix the input or the model, and run a job of another name.",
                ) from None
            raise AwsCallFailed(
                operation="waiting for transform_job_completed_or_stopped",
                code=type(error).__name__,
                detail=str(error),
                fix=f"The job goes on: `aws sagemaker describe-transform-job --transform-job-name {name}`, or stop it "
                f"with `aws sagemaker stop-transform-job --transform-job-name {name}`.",
            ) from None
        finally:
            events.unregister("after-call.sagemaker.DescribeTransformJob", progress)
        return progress.seen or self.sagemaker.describe_transform_job(TransformJobName=name)

    def _log_lines(self, name: str) -> str:
        """The job's last CloudWatch log lines (its streams are ``<job>/...``), for the failure message."""
        try:
            pages = (
                self.clients("logs")
                .get_paginator("filter_log_events")
                .paginate(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")
            )
            events = sorted((e for page in pages for e in page["events"]), key=lambda e: e["timestamp"])
        except Exception as error:  # noqa: BLE001 - the reason is still reported
            return f" (its logs in {LOG_GROUP} could not be read: {type(error).__name__})"
        lines = [secrets.redact(e["message"]) for e in events[-LOG_LINES:]]
        return "".join(f"\n  log: {line}" for line in lines) + ("\n" if lines else "")

    def finished(self, result: TransformResult, described: dict[str, Any]) -> TransformResult:
        started, ended = described.get("TransformStartTime"), described.get("TransformEndTime")
        seconds = (ended - started).total_seconds() if started and ended else None
        hours = seconds * result.instance_count / 3600 if seconds is not None else None
        price = hourly_price(result.instance_type)
        outputs = self.outputs(result.output_uri, started) if described["TransformJobStatus"] == "Completed" else []
        self.say(f"Transform job {result.job_name} {described['TransformJobStatus']}: {len(outputs)} output object(s)")
        return TransformResult(
            **{
                **result.__dict__,
                "status": described["TransformJobStatus"],
                "duration_seconds": seconds,
                "instance_hours": hours,
                "estimated_cost_usd": hours * price if hours is not None and price is not None else None,
                "outputs": tuple(outputs),
                "failure_reason": described.get("FailureReason") or None,
            }
        )

    def outputs(self, output_uri: str, since: datetime | None) -> list[str]:
        """The ``.out`` objects under the output path written since the job started (S3 keeps
        whole seconds), not an earlier job's."""
        bucket, prefix = s3uri.split(output_uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        floor = since.replace(microsecond=0) if since else None
        pages = self.clients("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [
            f"s3://{bucket}/{o['Key']}"
            for page in pages
            for o in page.get("Contents", [])
            if o["Key"].endswith(".out") and (floor is None or o["LastModified"] >= floor)
        ]


class JobProgress:
    """Logs each status change of job ``name`` seen by the waiter's DescribeTransformJob calls
    (on this thread only: the client may be shared)."""

    def __init__(self, say: Say, name: str) -> None:
        self.say, self.name = say, name
        self.started = datetime.now(timezone.utc)
        self.thread = threading.get_ident()
        self.last: str | None = None
        self.seen: dict[str, Any] | None = None

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        if threading.get_ident() != self.thread or parsed.get("TransformJobName") != self.name:
            return
        self.seen = parsed
        status = parsed.get("TransformJobStatus")
        if status != self.last:
            elapsed = (datetime.now(timezone.utc) - self.started).total_seconds()
            self.say(f"  [{elapsed:6.1f}s] {self.name} {status}")
            self.last = status


def request(name: str, model: str, cfg: BatchConfig, labels: dict[str, str]) -> dict[str, Any]:
    """CreateTransformJob's parameters for ``cfg``."""
    args: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": cfg.batch_strategy,
        "MaxPayloadInMB": cfg.max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": cfg.s3_input_data_type, "S3Uri": cfg.s3_input_uri}},
            "ContentType": cfg.content_type,
            "CompressionType": cfg.compression_type,
            "SplitType": cfg.split_type,
        },
        "TransformOutput": {
            "S3OutputPath": cfg.s3_output_path,
            "Accept": cfg.accept,
            "AssembleWith": cfg.assemble_with,
        },
        "TransformResources": {"InstanceType": cfg.instance_type, "InstanceCount": cfg.instance_count},
        "DataProcessing": {
            "InputFilter": cfg.input_filter,
            "OutputFilter": cfg.output_filter,
            "JoinSource": cfg.join_resource,
        },
        "Tags": [{"Key": k, "Value": v} for k, v in labels.items()],
    }
    if cfg.max_concurrent_transforms is not None:
        args["MaxConcurrentTransforms"] = cfg.max_concurrent_transforms
    client = {
        "InvocationsTimeoutInSeconds": cfg.invocations_timeout_seconds,
        "InvocationsMaxRetries": cfg.invocations_max_retries,
    }
    if any(v is not None for v in client.values()):
        args["ModelClientConfig"] = {k: v for k, v in client.items() if v is not None}
    if cfg.env:
        args["Environment"] = {str(k): str(v) for k, v in cfg.env.items()}
    if cfg.volume_kms_key_id:
        args["TransformResources"]["VolumeKmsKeyId"] = cfg.volume_kms_key_id
    if cfg.output_kms_key_id:
        args["TransformOutput"]["KmsKeyId"] = cfg.output_kms_key_id
    if cfg.data_capture_config:
        args["DataCaptureConfig"] = cfg.data_capture_config
    if cfg.experiment_config:
        args["ExperimentConfig"] = cfg.experiment_config
    return args


def default_job_name(origin: ModelOrigin, now: datetime) -> str:
    """``<registered model>-<version>-<UTC time to the millisecond>`` (or ``model-...``), within
    the job-name rule."""
    import re

    stem = f"{origin.registered_model}-v{origin.version}" if origin.registered_model else "model"
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", stem).strip("-")[:40] or "model"
    return f"{stem}-{now.strftime('%Y%m%d-%H%M%S')}-{now.microsecond // 1000:03d}"

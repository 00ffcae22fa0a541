"""The SageMaker model a batch transform job runs: found by the archive's digest, or made.

In this order: the model a previous job made (``mlflow-sagemaker-ops-<digest>-<settings>``: one
DescribeModel, when the role is given); the newest model the suite made of the same bytes (a
deployment's, or a kept job's) on the same image, VPC and role (ListModels and a ListTags a suite
model); else the archive is uploaded (nothing when the same bytes are in S3 already) and a model
made. With ``archive=false`` a new model and its archive are the job's own (named after it), so
deleting them after the job takes nothing another job or a deployment uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlflow_plugins.deploy.batch.config import BatchConfig
from mlflow_plugins.deploy.common import archives, s3uri
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.origin import ModelOrigin
from mlflow_plugins.errors import MissingSetting, as_domain_error
from mlflow_plugins.packaging import digest

MODEL_PREFIX = "mlflow-sagemaker-ops-"
BATCH_ONLY = "batch-job:"  # the deployment-id tag of a model one job made for itself (archive=false)


@dataclass(frozen=True)
class Model:
    name: str
    reused: bool
    bytes_uploaded: int
    made: tuple[tuple[str, str], ...] = ()  # (kind, resource) this job made: model, archive


class Models:
    def __init__(self, clients: Any) -> None:
        self.clients = clients
        self.sagemaker = clients("sagemaker")

    def find_or_make(
        self,
        model_uri: str,
        local: str,
        data: bytes,
        address: str,
        image: str,
        origin: ModelOrigin,
        cfg: BatchConfig,
        job: str,
    ) -> Model:
        """A SageMaker model of these bytes on ``image`` with the config's VPC (and role, when
        given): a previous job's or a deployment's, else a new one. With ``archive=false`` a new
        one is the job's own (named after it, its archive under the job's name), so deleting it
        after the job takes nothing another job may be using."""
        settings = json.dumps([image, cfg.vpc_config, cfg.execution_role_arn], sort_keys=True)
        own = f"{MODEL_PREFIX}{address[:24]}-{digest(settings.encode())[:12]}"
        found = self._describe_model(own) if cfg.execution_role_arn and cfg.archive else None
        if found is not None:
            # its archive is the content address of these bytes: put back if someone deleted it
            bucket = s3uri.split(found["PrimaryContainer"]["ModelDataUrl"])[0]
            again = archives.upload_archive(self.clients("s3"), bucket, "batch", data, local, None)
            return Model(own, True, again.bytes_uploaded)
        reusable = self._suite_model(address, image, cfg)
        if reusable is not None:
            return Model(reusable, True, 0)
        if not cfg.execution_role_arn:
            raise MissingSetting(
                name="execution_role_arn",
                allowed="an IAM role ARN that SageMaker can assume",
                fix="No SageMaker model of these model bytes exists yet, so one is made: pass "
                "--execution-role-arn arn:aws:iam::<account>:role/<role>.",
            )
        if not cfg.archive:
            own = job
        s3 = self.clients("s3")
        bucket = cfg.bucket or archives.default_bucket(self.clients)
        archives.ensure_bucket(s3, bucket, self.clients.region)
        uploaded = archives.upload_archive(s3, bucket, "batch" if cfg.archive else f"batch/{job}", data, local, None)
        made: list[tuple[str, str]] = [("archive", uploaded.s3_uri)] if uploaded.bytes_uploaded else []
        args: dict[str, Any] = {
            "ModelName": own,
            "ExecutionRoleArn": cfg.execution_role_arn,
            "PrimaryContainer": {"Image": image, "ModelDataUrl": uploaded.s3_uri},
            "Tags": [
                {"Key": k, "Value": v}
                for k, v in suite_labels.with_user_tags(
                    suite_labels.suite_tags(model_uri, address, origin, None if cfg.archive else f"{BATCH_ONLY}{job}"),
                    cfg.tags,
                ).items()
            ],
        }
        if cfg.vpc_config:
            args["VpcConfig"] = cfg.vpc_config
        try:
            self.sagemaker.create_model(**args)
        except Exception as error:
            self.remove(tuple(made))
            raise as_domain_error(error, "Nothing was left behind; fix the cause and run it again.") from None
        made.append(("model", own))
        return Model(own, False, uploaded.bytes_uploaded, tuple(made))

    def _describe_model(self, name: str) -> dict[str, Any] | None:
        try:
            return self.sagemaker.describe_model(ModelName=name)
        except self.sagemaker.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException":  # AWS: "Could not find model"
                return None
            raise

    def _suite_model(self, address: str, image: str, cfg: BatchConfig) -> str | None:
        """The newest model the suite made of these bytes (a deployment's or a kept job's) on
        ``image``, with the config's VPC and (when given) role, whose archive is still in S3."""
        pages = self.sagemaker.get_paginator("list_models").paginate(SortBy="CreationTime", SortOrder="Descending")
        for page in pages:
            for summary in page["Models"]:
                tags = suite_labels.as_dict(self.sagemaker.list_tags(ResourceArn=summary["ModelArn"])["Tags"])
                if tags.get(suite_labels.MANAGED) != "true" or tags.get(suite_labels.MODEL_DIGEST) != address[:64]:
                    continue
                if tags.get(suite_labels.DEPLOYMENT_ID, "").startswith(BATCH_ONLY):
                    continue  # another job's own model (archive=false): deleted when that job ends
                found = self._describe_model(summary["ModelName"])
                if (
                    found is not None
                    and _image(found) == image
                    and (found.get("VpcConfig") or None) == (cfg.vpc_config or None)
                    and (not cfg.execution_role_arn or found.get("ExecutionRoleArn") == cfg.execution_role_arn)
                    and _archive_exists(self.clients("s3"), found)
                ):
                    return summary["ModelName"]
        return None

    def remove(self, made: tuple[tuple[str, str], ...]) -> list[str]:
        """Delete what this job made, newest first; what could not be deleted."""
        left = []
        for kind, resource in reversed(made):
            try:
                if kind == "model":
                    self.sagemaker.delete_model(ModelName=resource)
                else:
                    s3uri.delete_object(self.clients("s3"), resource)
            except Exception as error:  # noqa: BLE001 - reported with the resource left behind
                left.append(f"{kind} {resource} ({type(error).__name__})")
        return left

    # ---- the job -------------------------------------------------------------------------


def _image(model: dict[str, Any]) -> str | None:
    return (model.get("PrimaryContainer") or {}).get("Image")


def _archive_exists(s3: Any, model: dict[str, Any]) -> bool:
    url = (model.get("PrimaryContainer") or {}).get("ModelDataUrl")
    if not url:
        return False
    bucket, key = s3uri.split(url)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True

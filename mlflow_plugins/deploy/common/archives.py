"""Model archives in S3, content-addressed: the same model bytes go to the same key, once.

The default bucket is ``mlflow-sagemaker-ops-<account>-<region>``, found with HeadBucket and
created if missing (no ``s3:ListAllMyBuckets`` needed). ``kms_key_id`` encrypts the upload.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_plugins.deploy.common.progress import UploadBar
from mlflow_plugins.errors import InvalidValue, ResourceNotFound
from mlflow_plugins.packaging import digest, model_archive

PREFIX = "mlflow-sagemaker-ops"
# Folders of archives that no API deployment owns (an underscore: no endpoint name has one)
EXPORTS, STACKS = "_exports", "_stacks"


@dataclass(frozen=True)
class UploadedModel:
    s3_uri: str
    digest: str
    bytes_uploaded: int
    local_dir: str


def local_model_dir(model_uri: str) -> str:
    """A local directory holding the model at ``model_uri`` (any URI MLflow can download)."""
    if os.path.isdir(model_uri):
        path = model_uri
    else:
        import mlflow.artifacts

        path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    if not (Path(path) / "MLmodel").exists():
        raise ResourceNotFound(
            kind="MLflow model (an MLmodel file)",
            name=model_uri,
            fix="Pass -m with a model URI such as models:/name/1, runs:/<run>/model or a model directory.",
        )
    return path


def local_pyfunc_model(model_uri: str) -> str:
    """:func:`local_model_dir`, refused before any upload unless the serving runtime can load it
    (the ``python_function`` flavor): otherwise the endpoint would only go Failed after it."""
    import yaml

    path = local_model_dir(model_uri)
    flavors = (yaml.safe_load((Path(path) / "MLmodel").read_text()) or {}).get("flavors") or {}
    if "python_function" not in flavors:
        raise InvalidValue(
            name=f"model {model_uri} flavors",
            value=sorted(flavors),
            reason="the serving runtime loads models through their python_function flavor",
            allowed="a model with python_function (every built-in MLflow flavor adds it)",
            fix="Log the model with mlflow.<flavor>.log_model or mlflow.pyfunc.log_model.",
        )
    return path


def default_bucket(clients: Any) -> str:
    account = (
        clients.account_id() if hasattr(clients, "account_id") else clients("sts").get_caller_identity()["Account"]
    )
    return f"{PREFIX}-{account}-{clients.region}"


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)


def upload_model(s3: Any, bucket: str, name: str, model_dir: str, kms_key_id: str | None) -> UploadedModel:
    return upload_archive(s3, bucket, name, model_archive(model_dir), model_dir, kms_key_id)


def upload_archive(
    s3: Any, bucket: str, name: str, data: bytes, model_dir: str, kms_key_id: str | None
) -> UploadedModel:
    """``data`` (a model archive) at its content address under ``name``; no upload when it is there."""
    address = digest(data)
    key = f"{PREFIX}/{name}/{address[:24]}/model.tar.gz"
    try:
        s3.head_object(Bucket=bucket, Key=key)
        uploaded = 0
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
        # boto3's managed transfer: multipart above 8 MB, retried parts, and a progress callback.
        s3.upload_fileobj(
            io.BytesIO(data), bucket, key, ExtraArgs=extra, Callback=UploadBar(f"s3://{bucket}/{key}", len(data))
        )
        uploaded = len(data)
    return UploadedModel(f"s3://{bucket}/{key}", address, uploaded, model_dir)


def stored(s3: Any, s3_uri: str) -> bool:
    """Whether an object is at ``s3_uri`` (a HeadObject): a content-addressed archive there is
    not uploaded again."""
    bucket, key = s3_uri[len("s3://") :].split("/", 1)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            return False
        raise


def delete_folder(s3: Any, bucket: str, folder: str) -> list[str]:
    """Every archive under ``<PREFIX>/<folder>/`` (a stack's, once the stack is deleted)."""
    gone: list[str] = []
    try:
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/{folder}/"))
    except s3.exceptions.NoSuchBucket:
        return gone
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            gone += [f"s3://{bucket}/{k['Key']}" for k in keys]
    return gone


def copy_to(s3: Any, uri: str, folder: str) -> str:
    """A content-addressed archive (``.../<digest>/model.tar.gz``) copied under ``folder`` of the
    same bucket, unless it is there (a CopyObject: the bytes stay in S3); its new URI. An export
    of a live deployment refers to the copy, which deleting that deployment leaves."""
    bucket, key = uri[len("s3://") :].split("/", 1)
    parts = key.rsplit("/", 2)
    if len(parts) != 3 or parts[2] != "model.tar.gz":
        return uri  # not one of the suite's archives (a multi-model endpoint's prefix, say)
    copy = f"s3://{bucket}/{PREFIX}/{folder}/{parts[1]}/model.tar.gz"
    if not stored(s3, copy):
        s3.copy_object(Bucket=bucket, Key=copy.split("/", 3)[3], CopySource={"Bucket": bucket, "Key": key})
    return copy

"""Predictions from a deployed endpoint: InvokeEndpoint (JSON or CSV, optionally to one
``TargetVariant``), or InvokeEndpointAsync through S3 for an asynchronous endpoint.

The asynchronous answer is awaited with a botocore waiter: on ``ListObjectsV2`` over the common
prefix of the output and failure locations, succeeding when the output object appears and
failing at once when the failure object does. (When the two are in different buckets, the
waiter watches the output only, and a failed inference surfaces when the wait times out.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import botocore.waiter

from mlflow_plugins.deploy.common import s3uri
from mlflow_plugins.deploy.common.progress import wait_delay
from mlflow_plugins.errors import AwsCallFailed, InvalidValue, as_domain_error

ASYNC_WAIT_SECONDS = 3600.0


def invoke(
    clients: Any,
    described: dict[str, Any],
    body: bytes,
    content_type: str,
    target_variant: str | None,
    say: Callable[[str], None],
) -> str:
    name = described["EndpointName"]
    if described.get("AsyncInferenceConfig"):
        if target_variant:
            raise InvalidValue(
                name="TargetVariant",
                value=target_variant,
                reason="InvokeEndpointAsync has no TargetVariant",
                allowed="no TargetVariant on an asynchronous endpoint",
                fix="Drop the TargetVariant param.",
            )
        return invoke_async(clients, name, body, content_type, described["AsyncInferenceConfig"], say)
    variants = [v["VariantName"] for v in described.get("ProductionVariants", [])]
    if target_variant and target_variant not in variants:
        raise InvalidValue(
            name="TargetVariant",
            value=target_variant,
            reason=f"endpoint {name} has no such production variant",
            allowed=", ".join(variants),
            fix=f"Pass TargetVariant={variants[0]} (or leave it out).",
        )
    runtime = clients("sagemaker-runtime")
    extra = {"TargetVariant": target_variant} if target_variant else {}
    try:
        reply = runtime.invoke_endpoint(
            EndpointName=name, Body=body, ContentType=content_type, Accept="application/json", **extra
        )
    except runtime.exceptions.ClientError as error:
        raise as_domain_error(
            error, f"Check that endpoint {name} is InService and the input matches its signature."
        ) from None
    return reply["Body"].read().decode()


def invoke_async(
    clients: Any, name: str, body: bytes, content_type: str, config: dict[str, Any], say: Callable[[str], None]
) -> str:
    """Upload the input next to the output path, InvokeEndpointAsync, wait for the answer."""
    s3, runtime = clients("s3"), clients("sagemaker-runtime")
    bucket, prefix = s3uri.split(config["OutputConfig"]["S3OutputPath"].rstrip("/"))
    suffix = "csv" if content_type.startswith("text/csv") else "json"
    key = f"{prefix}/inputs/{uuid.uuid4().hex}.{suffix}".lstrip("/")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    reply = runtime.invoke_endpoint_async(
        EndpointName=name, InputLocation=f"s3://{bucket}/{key}", ContentType=content_type, Accept="application/json"
    )
    say(f"Invoked {name} asynchronously (inference {reply['InferenceId']}); waiting for {reply['OutputLocation']}")
    out_bucket, out_key = s3uri.split(reply["OutputLocation"])
    fail_bucket, fail_key = s3uri.split(reply.get("FailureLocation", ""))
    delay = wait_delay()
    waiter_config = {"Delay": delay, "MaxAttempts": max(int(ASYNC_WAIT_SECONDS / delay), 1)}
    try:
        if fail_key and fail_bucket == out_bucket:
            _answer_waiter(s3, out_key, fail_key).wait(
                Bucket=out_bucket, Prefix=os.path.commonprefix([out_key, fail_key]), WaiterConfig=waiter_config
            )
        else:
            s3.get_waiter("object_exists").wait(Bucket=out_bucket, Key=out_key, WaiterConfig=waiter_config)
    except botocore.waiter.WaiterError as error:
        detail = _failure(s3, fail_bucket, fail_key) or f"no answer in {ASYNC_WAIT_SECONDS:.0f} s ({error})"
        raise AwsCallFailed(
            operation="InvokeEndpointAsync",
            code="AsyncInferenceFailed",
            detail=detail[:2000],
            fix="Check the input against the model's signature.",
        ) from None
    return s3.get_object(Bucket=out_bucket, Key=out_key)["Body"].read().decode()


def _answer_waiter(s3: Any, out_key: str, fail_key: str) -> botocore.waiter.Waiter:
    def listed(key: str) -> str:
        quoted = key.replace("\\", "\\\\").replace("'", "\\'")
        return f"contains(Contents[].Key || `[]`, '{quoted}')"

    model = botocore.waiter.WaiterModel(
        {
            "version": 2,
            "waiters": {
                "AsyncAnswer": {
                    "operation": "ListObjectsV2",
                    "delay": 15,
                    "maxAttempts": 240,
                    "acceptors": [
                        {"matcher": "path", "argument": listed(out_key), "expected": True, "state": "success"},
                        {"matcher": "path", "argument": listed(fail_key), "expected": True, "state": "failure"},
                    ],
                }
            },
        }
    )
    return botocore.waiter.create_waiter_with_client("AsyncAnswer", model, s3)


def _failure(s3: Any, bucket: str, key: str) -> str | None:
    """The failure object's text, or None when there is none."""
    if not key:
        return None
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        return None

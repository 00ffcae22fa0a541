"""Batch inference on SageMaker Batch Transform (:class:`BatchTransform`): every
CreateTransformJob setting, validated before any AWS call (:mod:`.config`), the model's
content-addressed archive and SageMaker model reused across jobs and deployments.

It stands beside the deployment targets (a job is not a deployment that serves), on the same
shared parts (:mod:`mlflow_plugins.deploy.common`): archives, images, tags, waiter progress.
"""

from __future__ import annotations

from typing import Any

from mlflow_plugins.deploy.batch._job import LOG_GROUP, BatchTransform, TransformResult
from mlflow_plugins.deploy.batch.config import KEYS, BatchConfig, batch_help, parse

__all__ = ["KEYS", "LOG_GROUP", "BatchConfig", "BatchTransform", "TransformResult", "batch_help", "parse", "transform"]


def transform(model_uri: str, clients: Any = None, **config: Any) -> TransformResult:
    """Run a batch transform job of ``model_uri``: the keyword arguments are
    ``mlflow.sagemaker.deploy_transform_job``'s (``job_name``, ``s3_input_uri``, ...) and the
    suite's (``batch_strategy``, ``max_payload_mb``, ...); see :data:`KEYS`."""
    cfg = parse(config)
    if clients is None:
        from mlflow_plugins.aws import AwsSettings, make_clients

        clients = make_clients(AwsSettings(region=cfg.region_name, assume_role_arn=cfg.assume_role_arn))
    return BatchTransform(clients).run(model_uri, cfg)

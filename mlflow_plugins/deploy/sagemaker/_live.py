"""What a SageMaker endpoint serves now, and the cleanup of what an interrupted deploy left.

For a controller that can be killed at any moment (registry hooks):

* :func:`observe` first lets a rollout in flight finish (botocore's waiters: ``Creating`` and
  ``Updating`` end ``InService`` or ``Failed``, ``Deleting`` ends gone), then reads the live
  endpoint config's tags: those say what serves, even when a crash came between the update and
  the retagging of the endpoint, which :func:`observe` then repairs.
* :func:`collect_orphans` deletes the suite's models and endpoint configs of this endpoint
  (named ``<name[:40]>-<UTC stamp>-<6 hex>``, see :func:`._requests.resource_name`) that the live
  config does not serve: a crash between CreateModel and CreateEndpoint leaves such a pair.
  It must only run while nothing else deploys to this endpoint (the controller holds its lease).
"""

from __future__ import annotations

import re
from typing import Any

from mlflow_plugins.deploy.common import archives, s3uri
from mlflow_plugins.deploy.common.labels import MANAGED
from mlflow_plugins.deploy.contract import Live
from mlflow_plugins.deploy.sagemaker._requests import models_in
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig

TAG = "mlflow-sagemaker-ops:"
ARCHIVE, MODEL, CONFIG = "S3 archive", "SageMaker model", "endpoint config"  # as plans name them
IN_FLIGHT = {
    "Creating": "endpoint_in_service",
    "Updating": "endpoint_in_service",
    "SystemUpdating": "endpoint_in_service",
    "RollingBack": "endpoint_in_service",
    "UpdateRollbackFailed": None,
    "Deleting": "endpoint_deleted",
}


def observe(deployer: Any, name: str, cfg: SageMakerConfig) -> Live:
    sagemaker = deployer.sagemaker
    described = deployer.describe(name)
    waiter = IN_FLIGHT.get(described["EndpointStatus"]) if described else None
    if waiter:
        deployer.say(f"Endpoint {name} is {described['EndpointStatus']}; waiting for it to settle")
        try:
            deployer.wait(name, waiter, cfg)
        except Exception:  # Failed: reported below from DescribeEndpoint
            pass
        described = deployer.describe(name)
    if described is None:
        return Live(exists=False)
    config = deployer.config_or_none(described["EndpointConfigName"])
    labels = _tags(sagemaker, config["EndpointConfigArn"]) if config else {}
    if config and labels.get(MANAGED):
        _repair_endpoint_tags(sagemaker, described["EndpointArn"], labels)
    return Live(
        exists=True,
        status=described["EndpointStatus"],
        arn=described["EndpointArn"],
        config=described["EndpointConfigName"],
        registered_model=labels.get(f"{TAG}registered-model"),
        version=labels.get(f"{TAG}model-version"),
        failure_reason=described.get("FailureReason"),
        models=tuple(models_in(config)),
    )


def serving_archive(deployer: Any, config_name: str) -> str | None:
    """The S3 archive (``ModelDataUrl``) of the model the config's first production variant
    serves; None when the config or model is gone. What lineage records as the deployed archive."""
    config = deployer.config_or_none(config_name) or {}
    served = next((v["ModelName"] for v in config.get("ProductionVariants", []) if v.get("ModelName")), None)
    if served is None:
        return None
    try:
        model = deployer.sagemaker.describe_model(ModelName=served)
    except deployer.sagemaker.exceptions.ClientError:
        return None
    return model.get("PrimaryContainer", {}).get("ModelDataUrl")


def collect_orphans(deployer: Any, name: str, live: Live, bucket: str | None = None) -> list[str]:
    """Delete this endpoint's suite-made configs, models and archives that ``live`` does not use;
    their names."""
    sagemaker, s3 = deployer.sagemaker, deployer.clients("s3")
    gone: list[str] = []
    for kind, resource in find_orphans(deployer, name, live, bucket):
        if kind == CONFIG:
            sagemaker.delete_endpoint_config(EndpointConfigName=resource)
        elif kind == MODEL:
            sagemaker.delete_model(ModelName=resource)
        else:
            s3.delete_object(**dict(zip(("Bucket", "Key"), s3uri.split(resource))))
        gone.append(resource)
    if gone:
        deployer.say(f"Deleted what an interrupted deploy of {name} left behind: {', '.join(gone)}")
    return gone


def find_orphans(
    deployer: Any, name: str, live: Live, bucket: str | None = None, keep: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """This endpoint's suite-made configs and models (named ``<name>-<stamp>-<id>``) that ``live``
    does not use, and the archives under its prefix that no live model serves (but ``keep``): what
    an interrupted or failed deploy left, as (kind, name) pairs. Reads only."""
    sagemaker = deployer.sagemaker
    mine = re.compile(rf"^{re.escape(name[:40])}-\d{{14}}-[0-9a-f]{{6}}$")
    found: list[tuple[str, str]] = []
    for page in sagemaker.get_paginator("list_endpoint_configs").paginate(NameContains=name[:40]):
        for item in page["EndpointConfigs"]:
            config = item["EndpointConfigName"]
            if mine.match(config) and config != live.config:
                found.append((CONFIG, config))
    for page in sagemaker.get_paginator("list_models").paginate(NameContains=name[:40]):
        for item in page["Models"]:
            model = item["ModelName"]
            if mine.match(model) and model not in live.models:
                found.append((MODEL, model))
    return found + [(ARCHIVE, uri) for uri in orphan_archives(deployer, name, live, bucket) if uri not in keep]


def archive_prefix(bucket: str, name: str) -> str:
    return f"s3://{bucket}/{archives.PREFIX}/{name}/"


def orphan_archives(deployer: Any, name: str, live: Live, bucket: str | None) -> list[str]:
    """Archives under this endpoint's prefix that no live model serves (an upload whose deploy
    died before CreateModel, or whose model an earlier failure orphaned)."""
    if not bucket:
        return []
    s3 = deployer.clients("s3")
    served = set()
    for model in live.models:
        try:
            served.add(deployer.sagemaker.describe_model(ModelName=model)["PrimaryContainer"].get("ModelDataUrl"))
        except deployer.sagemaker.exceptions.ClientError:
            continue
    prefix_bucket, prefix = s3uri.split(archive_prefix(bucket, name))
    try:
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=prefix_bucket, Prefix=prefix))
    except s3.exceptions.NoSuchBucket:
        return []
    uris = (f"s3://{prefix_bucket}/{item['Key']}" for page in pages for item in page.get("Contents", []))
    return [uri for uri in uris if uri not in served]


def _tags(sagemaker: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}


def _repair_endpoint_tags(sagemaker: Any, arn: str, config_labels: dict[str, str]) -> None:
    """The endpoint's suite tags follow its live config (a crash may have come in between)."""
    suite = {k: v for k, v in config_labels.items() if k.startswith(TAG)}
    current = _tags(sagemaker, arn)
    if any(current.get(k) != v for k, v in suite.items()):
        sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in suite.items()])

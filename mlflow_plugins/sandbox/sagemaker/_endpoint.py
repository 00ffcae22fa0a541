"""A SageMaker endpoint as the sandbox keeps it: fleets of variants, status, and its describe shape.

An endpoint serves from one *live* fleet (the endpoint config it is InService with). During an
update a second, *pending* fleet is provisioned and traffic moves between the two; this is what
DescribeEndpoint reports as ``ProductionVariants`` and ``PendingDeploymentSummary``
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html).

Instances of :class:`SandboxEndpoint` live in moto's ``SageMakerModelBackend.endpoints`` dict, so
moto's ListEndpoints, tagging and reset keep working on them.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from moto.sagemaker.utils import arn_formatter


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Variant:
    """One production (or shadow) variant of one fleet."""

    name: str
    model_name: str
    image: str | None
    instance_type: str | None
    serverless: dict[str, Any] | None
    desired_weight: float
    desired_count: int
    current_weight: float = 0.0
    current_count: int = 0
    statuses: list[dict[str, Any]] = field(default_factory=list)
    container: dict[str, Any] = field(default_factory=dict)  # the model's primary container

    @classmethod
    def from_config(cls, spec: dict[str, Any], container: dict[str, Any]) -> Variant:
        serverless = spec.get("ServerlessConfig")
        return cls(
            name=spec["VariantName"],
            model_name=spec.get("ModelName", ""),
            image=container.get("Image"),
            instance_type=spec.get("InstanceType"),
            serverless=copy.deepcopy(serverless) if serverless else None,
            desired_weight=float(spec.get("InitialVariantWeight", 1.0)),
            desired_count=0 if serverless else int(spec.get("InitialInstanceCount", 1)),
            container=copy.deepcopy(container),
        )

    def set_status(self, status: str | None, message: str = "") -> None:
        """Replace the variant's status list (AWS shows the step in progress)."""
        self.statuses = []
        if status:
            entry: dict[str, Any] = {"Status": status, "StartTime": utcnow()}
            if message:
                entry["StatusMessage"] = message
            self.statuses.append(entry)

    def go_live(self) -> None:
        self.current_count = self.desired_count
        self.current_weight = self.desired_weight
        self.set_status(None)

    def summary(self, pending: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "VariantName": self.name,
            "CurrentWeight": self.current_weight,
            "DesiredWeight": self.desired_weight,
        }
        if self.image:
            out["DeployedImages"] = [_deployed_image(self.image)]
        if self.serverless:
            out["CurrentServerlessConfig"] = copy.deepcopy(self.serverless)
            out["DesiredServerlessConfig"] = copy.deepcopy(self.serverless)
        else:
            out["CurrentInstanceCount"] = self.current_count
            out["DesiredInstanceCount"] = self.desired_count
        if pending and self.instance_type:
            out["InstanceType"] = self.instance_type
        if self.statuses:
            out["VariantStatus"] = copy.deepcopy(self.statuses)
        return out


def _deployed_image(image: str) -> dict[str, Any]:
    digest = hashlib.sha256(image.encode()).hexdigest()
    resolved = image if "@sha256:" in image else f"{image.split(':')[0]}@sha256:{digest}"
    return {"SpecifiedImage": image, "ResolvedImage": resolved, "ResolutionTime": utcnow()}


@dataclass
class Fleet:
    """The variants of one endpoint config, and the share of traffic the fleet receives."""

    config_name: str
    variants: list[Variant]
    shadow_variants: list[Variant]
    data_capture: dict[str, Any] | None
    async_config: dict[str, Any] | None
    traffic_share: float = 0.0
    account: str = "123456789012"
    kms_key_id: str | None = None

    def all_variants(self) -> list[Variant]:
        return self.variants + self.shadow_variants

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def is_serverless(self) -> bool:
        return any(v.serverless for v in self.variants)

    def set_status(self, status: str | None, message: str = "") -> None:
        for variant in self.all_variants():
            variant.set_status(status, message)


class SandboxEndpoint:
    """An endpoint with a lifecycle; duck-types moto's ``FakeEndpoint`` for moto's own code."""

    def __init__(self, account_id: str, region: str, name: str, tags: list[dict[str, str]]):
        self.endpoint_name = name
        self.arn = arn_formatter("endpoint", name, account_id, region)
        self.tags = list(tags or [])
        self.endpoint_status = "Creating"
        self.failure_reason: str | None = None
        self.creation_time = self.last_modified_time = utcnow()
        self.live: Fleet | None = None
        self.pending: Fleet | None = None
        self.pending_start: datetime | None = None
        self.last_deployment_config: dict[str, Any] | None = None
        self.process: Any = None  # the running lifecycle Process, if any

    @property
    def endpoint_config_name(self) -> str:
        fleet = self.live or self.pending
        return fleet.config_name if fleet else ""

    def set_status(self, status: str, failure_reason: str | None = None) -> None:
        self.endpoint_status = status
        self.failure_reason = failure_reason
        self.last_modified_time = utcnow()

    def summary(self) -> dict[str, Any]:
        return {
            "EndpointName": self.endpoint_name,
            "EndpointArn": self.arn,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "EndpointStatus": self.endpoint_status,
        }

    def describe(self) -> dict[str, Any]:
        out = self.summary()
        out["EndpointConfigName"] = self.endpoint_config_name
        shown = self.live or self.pending
        if shown is not None:
            out["ProductionVariants"] = [v.summary() for v in shown.variants]
            if shown.shadow_variants:
                out["ShadowProductionVariants"] = [v.summary() for v in shown.shadow_variants]
            if shown.data_capture:
                out["DataCaptureConfig"] = _data_capture_summary(shown.data_capture, shown.kms_key_id)
            if shown.async_config:
                out["AsyncInferenceConfig"] = copy.deepcopy(shown.async_config)
        if self.live is not None and self.pending is not None:
            out["PendingDeploymentSummary"] = self._pending_summary()
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.last_deployment_config:
            out["LastDeploymentConfig"] = copy.deepcopy(self.last_deployment_config)
        return out

    def _pending_summary(self) -> dict[str, Any]:
        assert self.pending is not None
        out: dict[str, Any] = {
            "EndpointConfigName": self.pending.config_name,
            "ProductionVariants": [v.summary(pending=True) for v in self.pending.variants],
            "StartTime": self.pending_start or utcnow(),
        }
        if self.pending.shadow_variants:
            out["ShadowProductionVariants"] = [v.summary(pending=True) for v in self.pending.shadow_variants]
        return out


def _data_capture_summary(config: dict[str, Any], endpoint_kms: str | None = None) -> dict[str, Any]:
    """DataCaptureConfig (the endpoint config's input shape) as DataCaptureConfigSummary."""
    enabled = bool(config.get("EnableCapture", False))
    out: dict[str, Any] = {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": int(config.get("InitialSamplingPercentage", 0)),
        "DestinationS3Uri": config.get("DestinationS3Uri", ""),
        # Required by the output shape. Without a key of its own, the capture uses the endpoint
        # config's KmsKeyId; with neither, the sandbox reports an empty string (AWS's value for
        # its default encryption is not documented).
        "KmsKeyId": config.get("KmsKeyId") or endpoint_kms or "",
    }
    return out

"""Turning endpoint configs into fleets, and checking an UpdateEndpoint request before it runs.

Rules from the API reference and the deployment guardrails guide:
* only an InService endpoint can be updated;
* at most one of BlueGreenUpdatePolicy and RollingUpdatePolicy; none means blue/green,
  all at once, no baking;
* with a guardrail policy (DeploymentConfig given), the new config keeps the variant names;
* rolling updates exclude serverless and multi-variant endpoints;
* CanarySize is at most 50% of the new fleet, LinearStepSize 10% to 50%;
* RetainAllVariantProperties keeps the live instance counts, weights and data capture config,
  except the properties named in ExcludeRetainedVariantProperties;
* RetainDeploymentConfig reuses the endpoint's LastDeploymentConfig.

The sandbox also rejects auto-rollback alarms that do not exist (AWS reports them when the
deployment fails to describe them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend

from mlflow_plugins.sandbox.sagemaker._endpoint import Fleet, SandboxEndpoint, Variant
from mlflow_plugins.sandbox.sagemaker._rollout import capacity_fraction, fleet_capacity

DEFAULT_POLICY = {
    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
    "TerminationWaitInSeconds": 0,
}


@dataclass
class UpdatePlan:
    fleet: Fleet
    strategy: str  # blue_green | rolling
    policy: dict[str, Any]
    alarms: list[str]
    max_seconds: float | None
    deployment_config: dict[str, Any] | None


def fleet_from_config(backend: SageMakerModelBackend, config: Any) -> Fleet:
    def variants(specs: list[dict[str, Any]]) -> list[Variant]:
        return [Variant.from_config(spec, _container(backend, spec.get("ModelName"))) for spec in specs]

    return Fleet(
        config_name=config.endpoint_config_name,
        variants=variants(config.production_variants),
        shadow_variants=variants(getattr(config, "shadow_production_variants", None) or []),
        data_capture=copy.deepcopy(config.data_capture_config) or None,
        async_config=copy.deepcopy(config.async_inference_config) or None,
        account=backend.account_id,
        kms_key_id=getattr(config, "kms_key_id", None),
    )


def _container(backend: SageMakerModelBackend, model_name: str | None) -> dict[str, Any]:
    model = backend._models.get(model_name or "")
    if model is None:
        return {}
    return model.primary_container or (model.containers[0] if model.containers else {})


def plan_update(ep: SandboxEndpoint, fleet: Fleet, params: dict[str, Any]) -> UpdatePlan:
    if ep.endpoint_status != "InService" or ep.live is None:
        raise ValidationError(f'Cannot update in-progress endpoint "{ep.arn}" (status {ep.endpoint_status}).')
    config = params.get("DeploymentConfig")
    if config is None and params.get("RetainDeploymentConfig"):
        config = copy.deepcopy(ep.last_deployment_config)
    if params.get("RetainAllVariantProperties"):
        _retain(ep.live, fleet, params.get("ExcludeRetainedVariantProperties") or [])
    config = config or {}
    blue_green, rolling = config.get("BlueGreenUpdatePolicy"), config.get("RollingUpdatePolicy")
    if blue_green and rolling:
        raise ValidationError(
            "DeploymentConfig can have either BlueGreenUpdatePolicy or RollingUpdatePolicy, not both."
        )
    if blue_green or rolling:
        _require_same_variants(ep.live, fleet)
    if rolling:
        _check_rolling(fleet)
    policy = rolling or blue_green or DEFAULT_POLICY
    if not rolling:
        _check_routing(policy["TrafficRoutingConfiguration"], fleet)
    alarms = [a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
    return UpdatePlan(
        fleet=fleet,
        strategy="rolling" if rolling else "blue_green",
        policy=policy,
        alarms=alarms,
        max_seconds=policy.get("MaximumExecutionTimeoutInSeconds"),
        deployment_config=config or None,
    )


def _retain(live: Fleet, new: Fleet, excluded: list[dict[str, str]]) -> None:
    skip = {item["VariantPropertyType"] for item in excluded}
    for variant in new.variants:
        old = live.variant(variant.name)
        if old is None:
            continue
        if "DesiredInstanceCount" not in skip and not variant.serverless:
            variant.desired_count = old.current_count
        if "DesiredWeight" not in skip:
            variant.desired_weight = old.current_weight
    if "DataCaptureConfig" not in skip:
        new.data_capture = copy.deepcopy(live.data_capture)


def _require_same_variants(live: Fleet, new: Fleet) -> None:
    old_names = sorted(v.name for v in live.variants)
    new_names = sorted(v.name for v in new.variants)
    if old_names != new_names:
        raise ValidationError(
            "For a blue/green or rolling deployment, the new endpoint configuration must have "
            f"the same variant names as the current one: current {old_names}, new {new_names}."
        )


def _check_rolling(fleet: Fleet) -> None:
    if fleet.is_serverless:
        raise ValidationError("RollingUpdatePolicy is not supported for serverless endpoints.")
    if len(fleet.variants) != 1:
        raise ValidationError(
            "RollingUpdatePolicy is not supported for endpoints with more than one production variant."
        )


def _check_routing(routing: dict[str, Any], fleet: Fleet) -> None:
    kind = routing["Type"]
    size_key = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(kind)
    if size_key is None:
        return
    size = routing.get(size_key)
    if size is None:
        raise ValidationError(f"TrafficRoutingConfiguration of Type {kind} requires {size_key}.")
    fraction = capacity_fraction(size, fleet_capacity(fleet))
    low = 0.1 if kind == "LINEAR" else 1e-9
    if not low <= fraction <= 0.5:
        allowed = "10% to 50%" if kind == "LINEAR" else "at most 50%"
        raise ValidationError(
            f"{size_key} {size['Type']}={size['Value']} is {fraction:.0%} of the new fleet's "
            f"capacity; it must be {allowed}."
        )

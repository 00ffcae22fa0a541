"""SageMaker hosting operations that moto lacks or gets wrong.

* CreateModel refuses an image path off the documented formats (:mod:`._images`).
* CreateModel / CreateEndpointConfig / CreateEndpoint reject a name that exists, as AWS does
  (moto overwrites); CreateModel keeps EnableNetworkIsolation; CreateEndpointConfig keeps
  ShadowProductionVariants and rejects a variant name used twice (production and shadow together).
* Endpoints have a lifecycle (:mod:`._rollout`): Creating -> InService | Failed, Updating,
  RollingBack, Deleting.
* UpdateEndpoint (absent from moto) with blue/green, rolling and auto-rollback.
* UpdateEndpointWeightsAndCapacities moves the endpoint through Updating (:mod:`._instances`).
* CreateEndpoint also creates the endpoint's lineage Context, as SageMaker does. Its name
  follows the ``<endpoint>-<epoch seconds>-aws-endpoint`` form seen on AWS; find it by its
  source URI (the endpoint ARN), never by name. It outlives the endpoint.
"""

from __future__ import annotations

import time
from typing import Any

from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.sagemaker.exceptions import ValidationError

from mlflow_plugins.sandbox.sagemaker import _alarms, _images
from mlflow_plugins.sandbox.sagemaker._endpoint import SandboxEndpoint
from mlflow_plugins.sandbox.sagemaker._handlers import (
    already_exists,
    backend_of,
    not_found,
    request,
    state,
)
from mlflow_plugins.sandbox.sagemaker._instances import capacity_body
from mlflow_plugins.sandbox.sagemaker._lineage import store_for
from mlflow_plugins.sandbox.sagemaker._rollout import (
    Guard,
    blue_green_body,
    create_body,
    delete_body,
    rolling_body,
)
from mlflow_plugins.sandbox.sagemaker._update import fleet_from_config, plan_update


def create_model(response: BaseResponse) -> ActionResult:
    params = request(response, "CreateModel")
    backend = backend_of(response)
    name = params["ModelName"]
    if name in backend._models:
        raise already_exists("model", "model", name, backend)
    _images.check_model_images(params)
    model = backend.create_model(
        model_name=name,
        execution_role_arn=params.get("ExecutionRoleArn"),
        primary_container=params.get("PrimaryContainer"),
        vpc_config=params.get("VpcConfig"),
        containers=params.get("Containers"),
        tags=params.get("Tags"),
    )
    model.enable_network_isolation = bool(params.get("EnableNetworkIsolation", False))
    return ActionResult(model.response_create)


def describe_model(response: BaseResponse) -> ActionResult:
    """moto's, without the empty VpcConfig it reports when there is none (the output shape
    makes its members required)."""
    params = request(response, "DescribeModel")
    model = backend_of(response).describe_model(params["ModelName"])
    return ActionResult({k: v for k, v in model.response_object.items() if v not in ({}, [])})


def create_endpoint_config(response: BaseResponse) -> ActionResult:
    params = request(response, "CreateEndpointConfig")
    backend = backend_of(response)
    name = params["EndpointConfigName"]
    if name in backend.endpoint_configs:
        raise already_exists("endpoint configuration", "endpoint-config", name, backend)
    shadows = params.get("ShadowProductionVariants") or []
    _require_unique_variant_names(params["ProductionVariants"] + shadows)
    backend.validate_production_variants(shadows)
    config = backend.create_endpoint_config(
        endpoint_config_name=name,
        production_variants=params["ProductionVariants"],
        data_capture_config=params.get("DataCaptureConfig"),
        async_inference_config=params.get("AsyncInferenceConfig"),
        tags=params.get("Tags"),
        kms_key_id=params.get("KmsKeyId"),
    )
    if shadows:
        config.shadow_production_variants = shadows
    return ActionResult({"EndpointConfigArn": config.endpoint_config_arn})


def _require_unique_variant_names(variants: list[dict[str, Any]]) -> None:
    names = [v["VariantName"] for v in variants]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValidationError(
            f"Variant names must be unique within an endpoint configuration, production and "
            f"shadow variants together: {', '.join(repeated)} appear(s) more than once in "
            f"{names}. Give each variant its own name."
        )


def describe_endpoint_config(response: BaseResponse) -> ActionResult:
    """moto's, without the empty DataCaptureConfig it reports when there is none (the output
    shape makes its members required)."""
    params = request(response, "DescribeEndpointConfig")
    config = _config(backend_of(response), params["EndpointConfigName"])
    return ActionResult({k: v for k, v in config.response_object.items() if v not in ({}, [])})


def create_endpoint(response: BaseResponse) -> ActionResult:
    params = request(response, "CreateEndpoint")
    backend = backend_of(response)
    name = params["EndpointName"]
    if name in backend.endpoints:
        raise already_exists("endpoint", "endpoint", name, backend)
    config = _config(backend, params["EndpointConfigName"])
    sandbox = state()
    with sandbox.lock:
        endpoint = SandboxEndpoint(backend.account_id, backend.region_name, name, params.get("Tags", []))
        backend.endpoints[name] = endpoint
        _create_endpoint_context(backend, endpoint)
        sandbox.lifecycle.run(endpoint, create_body(sandbox.lifecycle, endpoint, fleet_from_config(backend, config)))
    return ActionResult({"EndpointArn": endpoint.arn})


def describe_endpoint(response: BaseResponse) -> ActionResult:
    params = request(response, "DescribeEndpoint")
    with state().lock:
        return ActionResult(_endpoint(response, params["EndpointName"]).describe())


def delete_endpoint(response: BaseResponse) -> ActionResult:
    params = request(response, "DeleteEndpoint")
    backend = backend_of(response)
    sandbox = state()
    with sandbox.lock:
        endpoint = _endpoint(response, params["EndpointName"])
        if endpoint.endpoint_status == "Deleting":
            raise ValidationError(f'Cannot delete endpoint "{endpoint.arn}": it is already being deleted.')
        guard = getattr(endpoint, "guard", None)
        if guard is not None:
            guard.armed = False

        def forget() -> None:
            if backend.endpoints.get(endpoint.endpoint_name) is endpoint:
                del backend.endpoints[endpoint.endpoint_name]

        sandbox.lifecycle.run(endpoint, delete_body(sandbox.lifecycle, endpoint, forget))
    return EmptyResult()


def update_endpoint(response: BaseResponse) -> ActionResult:
    params = request(response, "UpdateEndpoint")
    backend = backend_of(response)
    sandbox = state()
    with sandbox.lock:
        endpoint = _endpoint(response, params["EndpointName"])
        fleet = fleet_from_config(backend, _config(backend, params["EndpointConfigName"]))
        plan = plan_update(endpoint, fleet, params)
        missing = _alarms.missing_alarms(backend.account_id, backend.region_name, plan.alarms)
        if missing:
            raise ValidationError(
                f"AutoRollbackConfiguration names CloudWatch alarm(s) that do not exist: {', '.join(missing)}."
            )
        guard = Guard(backend.account_id, backend.region_name, plan.alarms)
        endpoint.guard = guard
        if plan.deployment_config:
            endpoint.last_deployment_config = plan.deployment_config
        life = sandbox.lifecycle
        body = (rolling_body if plan.strategy == "rolling" else blue_green_body)(
            life, endpoint, plan.fleet, plan.policy, guard
        )
        life.run(endpoint, body)
        if plan.max_seconds:
            guard.start_deadline(life.scheduler, plan.max_seconds)
    return ActionResult({"EndpointArn": endpoint.arn})


def update_endpoint_weights_and_capacities(response: BaseResponse) -> ActionResult:
    params = request(response, "UpdateEndpointWeightsAndCapacities")
    sandbox = state()
    with sandbox.lock:
        endpoint = _endpoint(response, params["EndpointName"])
        if endpoint.endpoint_status != "InService" or endpoint.live is None:
            raise ValidationError(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        changes = params["DesiredWeightsAndCapacities"]
        names = [c["VariantName"] for c in changes]
        if len(set(names)) != len(names):
            raise ValidationError("The variant names in DesiredWeightsAndCapacities must be unique.")
        for name in names:
            if endpoint.live.variant(name) is None:
                raise ValidationError(
                    f'The variant name(s) "{name}" is/are not present within endpoint '
                    f'configuration "{endpoint.endpoint_config_name}".'
                )
        sandbox.lifecycle.run(endpoint, capacity_body(sandbox.lifecycle, endpoint, changes))
    return ActionResult({"EndpointArn": endpoint.arn})


def _endpoint(response: BaseResponse, name: str) -> SandboxEndpoint:
    backend = backend_of(response)
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        raise not_found("endpoint", "endpoint", name, backend)
    return endpoint


def _config(backend: Any, name: str) -> Any:
    config = backend.endpoint_configs.get(name)
    if config is None:
        raise not_found("endpoint configuration", "endpoint-config", name, backend)
    return config


def _create_endpoint_context(backend: Any, endpoint: SandboxEndpoint) -> None:
    store, stamp = store_for(backend), int(time.time())
    while True:  # a recreated endpoint gets a new context; the old one is kept
        suffix = f"-{stamp}-aws-endpoint"
        name = endpoint.endpoint_name[: 120 - len(suffix)] + suffix
        if store._arn("Context", name) not in store.entities:
            break
        stamp += 1
    store.create(
        "Context",
        name,
        {"SourceUri": endpoint.arn, "SourceType": "ARN", "SourceId": endpoint.endpoint_name},
        "Endpoint",
    )


HANDLERS = [
    create_model,
    describe_model,
    create_endpoint_config,
    describe_endpoint_config,
    create_endpoint,
    describe_endpoint,
    delete_endpoint,
    update_endpoint,
    update_endpoint_weights_and_capacities,
]

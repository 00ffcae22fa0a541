"""``sagemaker-runtime InvokeEndpoint`` reaching the variants' serving processes.

Routing, as SageMaker documents it: during a blue/green update a request goes to the new fleet
with the probability of its traffic share; within a fleet, to a variant by ``CurrentWeight`` or
to the ``TargetVariant``. On a multi-model endpoint ``TargetModel`` names an archive under the
model's S3 prefix: it is fetched and loaded on its first invoke (``POST /models``), then invoked.
A container's error answer comes back as SageMaker's ``ModelError`` (HTTP 424) with the original
status and message.

Shadow variants: a request to a production variant is copied to the fleet's shadow variant with
the probability of the shadow's weight relative to the production variant's (AWS's shadow-variant
guide), in the background; the shadow's answer is discarded. Every request that reaches a
container publishes SageMaker's invocation metrics and, when the endpoint captures data, a capture
record (:mod:`._traffic`).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import requests
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from mlflow_plugins.sandbox._state import current
from mlflow_plugins.sandbox.sagemaker._endpoint import Fleet, SandboxEndpoint, Variant
from mlflow_plugins.sandbox.sagemaker._serving_host import (
    Container,
    ServingHost,
    download_failure,
    extract_model,
    s3_bytes,
)
from mlflow_plugins.sandbox.sagemaker._traffic import Answer, Request, capture, publish

SERVING_STATES = ("InService", "Updating", "RollingBack", "SystemUpdating")
FORWARDED = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Inference-Id")


class InvokeError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra

    def response(self) -> tuple[int, dict[str, str], str]:
        body = {"__type": self.code, "message": str(self), **self.extra}
        # moto takes the status from the "status" header, not the tuple's first element.
        headers = {"status": str(self.status), "Content-Type": "application/json", "x-amzn-ErrorType": self.code}
        return self.status, headers, json.dumps(body)


def _validation(message: str) -> InvokeError:
    return InvokeError(400, "ValidationError", message)


def pick_fleet(endpoint: SandboxEndpoint) -> Fleet:
    pending = endpoint.pending
    if pending is not None and endpoint.live is not None and random.random() < pending.traffic_share:
        return pending
    return endpoint.live or pending  # type: ignore[return-value]


def pick_variant(fleet: Fleet, target: str | None, endpoint: str) -> Variant:
    if target:
        variant = fleet.variant(target)
        if variant is None:
            names = ", ".join(v.name for v in fleet.variants)
            raise _validation(
                f"The variant {target!r} is not a production variant of endpoint {endpoint}. Variants: {names}."
            )
        return variant
    weights = [max(v.current_weight, 0.0) for v in fleet.variants]
    if not any(weights):
        raise _validation(f"Endpoint {endpoint} has no variant with a weight above 0.")
    return random.choices(fleet.variants, weights=weights)[0]


def pick_shadow(fleet: Fleet, variant: Variant) -> Variant | None:
    """The shadow variant this request is copied to, if sampling picks it."""
    for shadow in fleet.shadow_variants:
        share = shadow.desired_weight / variant.desired_weight if variant.desired_weight > 0 else 0.0
        if random.random() < share:
            return shadow
    return None


@dataclass
class Route:
    """Where one request goes: the fleet, the variant and container that answer, and the shadow
    container that gets a copy (if sampling picked one)."""

    fleet: Fleet
    variant: Variant
    container: Container
    shadow: Container | None


def _route(response: SageMakerRuntimeResponse, name: str) -> Route:
    sandbox = current()
    with sandbox.lock:
        endpoint = sagemaker_backends[response.current_account][response.region].endpoints.get(name)
        if endpoint is None or endpoint.endpoint_status not in SERVING_STATES:
            raise _validation(f"Endpoint {name} of account {response.current_account} not found.")
        fleet = pick_fleet(endpoint)
        variant = pick_variant(fleet, response.headers.get("X-Amzn-SageMaker-Target-Variant"), name)
        host = sandbox.host
        serving = isinstance(host, ServingHost)
        container = host.container(name, fleet.config_name, variant.name) if serving else None
        shadow = pick_shadow(fleet, variant)
        shadow_container = host.container(name, fleet.config_name, shadow.name) if serving and shadow else None
    if container is None or container.port is None:
        why = (
            "its model has no ModelDataUrl to serve"
            if not serving or host.processes
            else 'the sandbox runs no serving processes (POST /_sandbox/hosting {"processes": true} starts them)'
        )
        raise InvokeError(
            424,
            "ModelError",
            f"The sandbox runs no container for variant {variant.name} of endpoint {name}: {why}.",
            OriginalStatusCode=503,
            OriginalMessage="no container",
        )
    return Route(fleet, variant, container, shadow_container)


def runtime_name(target: str) -> str:
    """The name the container loads ``target`` under: a TargetModel may hold slashes
    (``churn/3/model.tar.gz``), which a ``/models/{name}`` path cannot; SageMaker likewise hands
    the container a name of its own choosing."""
    return hashlib.sha256(target.encode()).hexdigest()[:32]


def _load_target(container: Container, target: str, account: str) -> None:
    """MME: fetch ``target`` from the model's S3 prefix and load it, once."""
    with container.lock:
        if target in container.models:
            return
        url = container.model_data.rstrip("/") + "/" + target.lstrip("/")
        instance = f"{container.variant}-{container.instance}"  # each instance keeps its own cache
        local = Path(current().host.workdir) / "mme" / instance / target.replace("/", "_")
        try:
            extract_model(account, url, local)
        except Exception:
            raise _validation(download_failure(url)) from None
        reply = requests.post(
            container.url + "/models", json={"model_name": runtime_name(target), "url": str(local)}, timeout=120
        )
        if reply.status_code not in (200, 409):
            raise _model_error(reply, container.variant)
        container.models[target] = str(local)


def _model_error(reply: requests.Response, variant: str) -> InvokeError:
    kind = "client" if reply.status_code < 500 else "server"
    return InvokeError(
        424,
        "ModelError",
        f'Received {kind} error ({reply.status_code}) from {variant} with message "{reply.text}". '
        "See the container's output in the sandbox log.",
        OriginalStatusCode=reply.status_code,
        OriginalMessage=reply.text,
        LogStreamArn=f"arn:aws:logs:sandbox:log-group:/aws/sagemaker/Endpoints/{variant}",
    )


def invoke_endpoint(self: SageMakerRuntimeResponse) -> tuple[int, dict[str, str], Any]:
    arrived = time.perf_counter()
    try:
        name = unquote(self.path.split("/")[2])
        route = _route(self, name)
        container = route.container
        headers = {h: self.headers[h] for h in FORWARDED if self.headers.get(h)}
        path = "/invocations"
        if container.multi_model:
            target = self.headers.get("X-Amzn-SageMaker-Target-Model")
            if not target:
                raise _validation(
                    f"Endpoint {name} is a multi-model endpoint: set TargetModel to the archive to invoke."
                )
            _load_target(container, target, self.current_account)
            headers["X-Amzn-SageMaker-Target-Model"] = target
            path = f"/models/{runtime_name(target)}/invoke"
        body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
        request = Request(
            self.current_account,
            self.region,
            name,
            body,
            headers,
            route.fleet.data_capture,
            inference_id=self.headers.get("X-Amzn-SageMaker-Inference-Id"),
        )
        started = time.perf_counter()
        reply = requests.post(container.url + path, data=body, headers=headers, timeout=120)
        model_seconds = time.perf_counter() - started
        container.answered += 1
        answer = Answer.of(route.variant.name, reply, model_seconds)
        publish(
            request, route.variant.name, reply.status_code, model_seconds, time.perf_counter() - arrived - model_seconds
        )
        capture(request, answer)
        if route.shadow is not None and route.shadow.port is not None and not container.multi_model:
            current().shadow.mirror(request, answer, route.shadow.variant, route.shadow.url)
        if reply.status_code >= 400:
            raise _model_error(reply, route.variant.name)
        return (
            200,
            {
                "Content-Type": reply.headers.get("Content-Type", "application/json"),
                "x-Amzn-Invoked-Production-Variant": route.variant.name,
            },
            reply.content,
        )
    except InvokeError as error:
        return error.response()


def invoke_endpoint_async(self: SageMakerRuntimeResponse) -> tuple[int, dict[str, str], Any]:
    """InvokeEndpointAsync: read the input from S3, predict in the background, write the answer
    to the endpoint's S3OutputPath (or the error to S3FailurePath), answer 202 at once."""
    try:
        name = unquote(self.path.split("/")[2])
        output = _async_output(self, name)
        route = _route(self, name)
        variant, container = route.variant, route.container
        input_location = self.headers.get("X-Amzn-SageMaker-InputLocation", "")
        inference_id = self.headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4())
        output_uri = f"{output['S3OutputPath'].rstrip('/')}/{inference_id}.out"
        failure_uri = f"{output.get('S3FailurePath', output['S3OutputPath']).rstrip('/')}/{inference_id}-error.out"
        headers = {h: self.headers[h] for h in ("Content-Type", "Accept") if self.headers.get(h)}
        job = (self.current_account, container, variant.name, input_location, headers, output_uri, failure_uri)
        threading.Thread(target=_run_async, args=job, daemon=True).start()
        return (
            202,
            {
                "status": "202",
                "X-Amzn-SageMaker-OutputLocation": output_uri,
                "X-Amzn-SageMaker-FailureLocation": failure_uri,
            },
            json.dumps({"InferenceId": inference_id}),
        )
    except InvokeError as error:
        return error.response()


def _async_output(response: SageMakerRuntimeResponse, name: str) -> dict[str, Any]:
    with current().lock:
        endpoint = sagemaker_backends[response.current_account][response.region].endpoints.get(name)
        config = (endpoint.live.async_config if endpoint is not None and endpoint.live is not None else None) or {}
    if not config.get("OutputConfig", {}).get("S3OutputPath"):
        raise _validation(
            f"Endpoint {name} is not an asynchronous endpoint (no AsyncInferenceConfig). "
            "Use InvokeEndpoint, or create it with an AsyncInferenceConfig."
        )
    return config["OutputConfig"]


def _run_async(
    account: str,
    container: Container,
    variant: str,
    input_location: str,
    headers: dict[str, str],
    output_uri: str,
    failure_uri: str,
) -> None:
    try:
        body = s3_bytes(account, input_location)
        reply = requests.post(container.url + "/invocations", data=body, headers=headers, timeout=3600)
        target, data = (output_uri, reply.content) if reply.status_code < 400 else (failure_uri, reply.content)
    except Exception as error:  # the input is missing or the container is gone: report it where AWS would
        target, data = failure_uri, json.dumps({"message": f"{type(error).__name__}: {error}"}).encode()
    parsed = urlparse(target)
    s3_backends[account]["aws"].put_object(parsed.netloc, parsed.path.lstrip("/"), data)


def install() -> None:
    SageMakerRuntimeResponse.use_raw_body = True
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]
    SageMakerRuntimeResponse.invoke_endpoint_async = invoke_endpoint_async  # type: ignore[method-assign]

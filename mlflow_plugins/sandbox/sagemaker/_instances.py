"""Capacity changes of a live endpoint: UpdateEndpointWeightsAndCapacities and autoscaling.

Both move the endpoint through ``Updating``: the variants get their new weights and desired
instance counts, the host starts (or stops) serving processes to match, and once the new
instances pass their ping health check the counts go live and the endpoint is ``InService``
again. A new instance that fails its health check leaves the previous counts in place, with the
reason in ``FailureReason`` (the endpoint stays ``InService``, as after a failed update).

Application Auto Scaling changes a variant's ``DesiredInstanceCount`` the same way
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling.html). moto evaluates no
scaling policy from metrics, so in the sandbox the desired count it applies is the registered
range: registering (or re-registering) a scalable target whose [MinCapacity, MaxCapacity] excludes
the current count scales the variant into the range at once.
"""

from __future__ import annotations

import logging
from typing import Any

from moto.sagemaker.models import sagemaker_backends

from mlflow_plugins.sandbox._clock import Wait
from mlflow_plugins.sandbox._state import current
from mlflow_plugins.sandbox.sagemaker._endpoint import SandboxEndpoint
from mlflow_plugins.sandbox.sagemaker._rollout import Body, Lifecycle

log = logging.getLogger(__name__)


def capacity_body(life: Lifecycle, endpoint: SandboxEndpoint, changes: list[dict[str, Any]]) -> Body:
    fleet = endpoint.live
    assert fleet is not None
    endpoint.set_status("Updating")
    before = {v.name: (v.desired_weight, v.desired_count) for v in fleet.variants}
    for change in changes:
        variant = fleet.variant(change["VariantName"])
        if "DesiredWeight" in change:
            variant.desired_weight = float(change["DesiredWeight"])
        if "DesiredInstanceCount" in change:
            variant.desired_count = int(change["DesiredInstanceCount"])
            life.host.scale(endpoint.endpoint_name, fleet, variant, variant.desired_count)
        variant.set_status("Updating")
    yield Wait(life.timings.provision / 3, "capacity")
    failure = yield from life.healthy(endpoint, fleet)
    if failure:
        for variant in fleet.variants:
            variant.desired_weight, variant.desired_count = before[variant.name]
            life.host.scale(endpoint.endpoint_name, fleet, variant, variant.current_count)
            variant.set_status(None)
        endpoint.set_status("InService", f"Failed to update the endpoint's capacity: {failure}")
        return
    for variant in fleet.variants:
        variant.go_live()
    endpoint.set_status("InService")


def apply_desired_count(account: str, region: str, resource_id: str, low: int | None, high: int | None) -> None:
    """Scale ``endpoint/<E>/variant/<V>`` into [low, high] when its count is outside it."""
    _, endpoint_name, _, variant_name = resource_id.split("/")
    sandbox = current()
    with sandbox.lock:
        endpoint = sagemaker_backends[account][region].endpoints.get(endpoint_name)
        variant = endpoint.live.variant(variant_name) if endpoint is not None and endpoint.live else None
        if variant is None or variant.serverless:
            return
        count = variant.desired_count
        wanted = max(count, low) if low is not None else count
        wanted = min(wanted, high) if high is not None else wanted
        if wanted == count:
            return
        if endpoint.endpoint_status != "InService":
            log.info(
                "sandbox: %s is %s; autoscaling leaves its count at %d", endpoint_name, endpoint.endpoint_status, count
            )
            return
        log.info("sandbox: autoscaling sets %s variant %s to %d instance(s)", endpoint_name, variant_name, wanted)
        change = {"VariantName": variant_name, "DesiredInstanceCount": wanted}
        sandbox.lifecycle.run(endpoint, capacity_body(sandbox.lifecycle, endpoint, [change]))

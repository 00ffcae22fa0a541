"""Application Auto Scaling, as the API reference states it, where moto differs.

* DeregisterScalableTarget, PutScalingPolicy and PutScheduledAction on a scalable target that is
  not registered answer ``ObjectNotFoundException`` ("For any operation that depends on the
  existence of a scalable target, this exception is thrown if the scalable target with the
  specified service namespace, resource ID, and scalable dimension does not exist"); moto answers
  a ValidationException for the first and accepts the others.
* RegisterScalableTarget for a SageMaker variant needs the endpoint and its variant to exist
  (moto checks ECS services only).
* DeregisterScalableTarget deletes the target's scaling policies (with the CloudWatch alarms of
  its target-tracking policies) and its scheduled actions ("Deregistering a scalable target deletes
  the scaling policies and the scheduled actions that are associated with it"); moto keeps them.
* PutScalingPolicy on an existing target-tracking policy updates it, alarms included; moto makes the
  policy anew with new alarms and leaves the old ones.
* Registering a SageMaker variant whose instance count is outside [MinCapacity, MaxCapacity]
  brings it into the range, as Application Auto Scaling does: the sandbox applies that desired
  count to the variant (:func:`~.sagemaker._instances.apply_desired_count`), and its serving
  processes follow.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from moto.applicationautoscaling.models import ApplicationAutoscalingBackend, FakeApplicationAutoscalingPolicy
from moto.core.exceptions import JsonRESTError

SAGEMAKER = "sagemaker"
SAGEMAKER_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


class ObjectNotFound(JsonRESTError):
    def __init__(self, namespace: str, resource_id: str, dimension: str, operation: str) -> None:
        super().__init__(
            "ObjectNotFoundException",
            (
                f"No scalable target is registered for service namespace {namespace}, resource ID {resource_id}, "
                f"scalable dimension {dimension}, so {operation} cannot act on it. Call RegisterScalableTarget first "
                "(DescribeScalableTargets lists the registered ones)."
            ),
        )


class NoSuchVariant(JsonRESTError):
    def __init__(self, resource_id: str, why: str) -> None:
        super().__init__(
            "ValidationException",
            (
                f"Cannot register {resource_id} as a scalable target: {why}. The resource ID must be "
                "endpoint/<endpoint name>/variant/<variant name> of an existing endpoint (DescribeEndpoint lists "
                "its ProductionVariants)."
            ),
        )


def install() -> None:
    if getattr(ApplicationAutoscalingBackend, "_sandbox_installed", False):
        return
    _deregister_deletes_what_hangs_on_it()
    _needs_a_target("deregister_scalable_target", "DeregisterScalableTarget", 0, 1, 2)
    _needs_a_target("put_scaling_policy", "PutScalingPolicy", 1, 2, 3)
    _needs_a_target("put_scheduled_action", "PutScheduledAction", 0, 4, 5)
    _put_policy_replaces_its_alarms()
    _register_checks_the_variant()
    ApplicationAutoscalingBackend._sandbox_installed = True  # type: ignore[attr-defined]


def _needs_a_target(method: str, operation: str, namespace_at: int, resource_at: int, dimension_at: int) -> None:
    original = getattr(ApplicationAutoscalingBackend, method)

    @functools.wraps(original)  # inspect.signature() sees moto's parameters through it
    def checked(self: ApplicationAutoscalingBackend, *args: Any, **kwargs: Any) -> Any:
        names = list(original.__code__.co_varnames[1 : original.__code__.co_argcount])
        values = dict(zip(names, args), **kwargs)
        namespace, resource_id, dimension = (values[names[i]] for i in (namespace_at, resource_at, dimension_at))
        if not self._scalable_target_exists(resource_id, dimension):
            raise ObjectNotFound(namespace, resource_id, dimension, operation)
        return original(self, *args, **kwargs)

    setattr(ApplicationAutoscalingBackend, method, checked)


def _deregister_deletes_what_hangs_on_it() -> None:
    original = ApplicationAutoscalingBackend.deregister_scalable_target

    def deregister(self: ApplicationAutoscalingBackend, namespace: str, r_id: str, dimension: str) -> None:
        original(self, namespace, r_id, dimension)
        for key, policy in list(self.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (
                namespace,
                r_id,
                dimension,
            ):
                policy.delete_alarms(self.account_id, self.region_name)
                del self.policies[key]
        self.scheduled_actions = [
            action
            for action in self.scheduled_actions
            if (action.service_namespace, action.resource_id, action.scalable_dimension) != (namespace, r_id, dimension)
        ]

    ApplicationAutoscalingBackend.deregister_scalable_target = deregister  # type: ignore[method-assign]


def _put_policy_replaces_its_alarms() -> None:
    original = ApplicationAutoscalingBackend.put_scaling_policy
    signature = inspect.signature(original)

    def put(self: ApplicationAutoscalingBackend, *args: Any, **kwargs: Any) -> Any:
        given = signature.bind(self, *args, **kwargs).arguments
        key = FakeApplicationAutoscalingPolicy.formulate_key(
            given["service_namespace"], given["resource_id"], given["scalable_dimension"], given["policy_name"]
        )
        old = self.policies.get(key)
        policy = original(self, *args, **kwargs)
        if old is not None and old is not policy:
            from moto.cloudwatch.models import cloudwatch_backends

            kept = {alarm.name for alarm in getattr(policy, "alarms", [])}
            gone = [alarm.name for alarm in getattr(old, "alarms", []) if alarm.name not in kept]
            if gone:
                cloudwatch_backends[self.account_id][self.region_name].delete_alarms(gone)
        return policy

    ApplicationAutoscalingBackend.put_scaling_policy = put  # type: ignore[method-assign]


def _register_checks_the_variant() -> None:
    original = ApplicationAutoscalingBackend.register_scalable_target

    def register(
        self: ApplicationAutoscalingBackend,
        namespace: str,
        r_id: str,
        dimension: str,
        min_capacity: Any,
        max_capacity: Any,
        role_arn: Any,
        suspended_state: Any,
    ) -> Any:
        sagemaker = namespace == SAGEMAKER and dimension == SAGEMAKER_DIMENSION
        if sagemaker:
            _variant(self.account_id, self.region_name, r_id)
        target = original(self, namespace, r_id, dimension, min_capacity, max_capacity, role_arn, suspended_state)
        if sagemaker:
            from mlflow_plugins.sandbox.sagemaker._instances import apply_desired_count

            apply_desired_count(self.account_id, self.region_name, r_id, target.min_capacity, target.max_capacity)
        return target

    ApplicationAutoscalingBackend.register_scalable_target = register  # type: ignore[method-assign]


def _variant(account: str, region: str, resource_id: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    parts = resource_id.split("/")
    if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant":
        raise NoSuchVariant(resource_id, "it is not of the form endpoint/<name>/variant/<name>")
    endpoint = sagemaker_backends[account][region].endpoints.get(parts[1])
    if endpoint is None:
        raise NoSuchVariant(resource_id, f"endpoint {parts[1]} does not exist")
    fleet = getattr(endpoint, "live", None) or getattr(endpoint, "pending", None)
    variant = fleet.variant(parts[3]) if fleet is not None else None
    if variant is None:
        raise NoSuchVariant(resource_id, f"endpoint {parts[1]} has no production variant {parts[3]}")
    return variant

"""Install the sandbox's extensions into moto's backends and responses (once per process)."""

from __future__ import annotations

from typing import Any

from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from mlflow_plugins.sandbox import _autoscaling, _cloudformation, _ecs
from mlflow_plugins.sandbox.sagemaker import _alarms, _hosting_api, _lineage_api, _runtime_api, _transform_api
from mlflow_plugins.sandbox.sagemaker._lineage import store_for

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    for handler in _hosting_api.HANDLERS + _lineage_api.HANDLERS + _transform_api.HANDLERS:
        setattr(SageMakerResponse, handler.__name__, handler)
    _tag_lineage_entities()
    _add_tags_overwrites()
    _scalable_targets_have_a_role()
    _alarms.install()
    _autoscaling.install()
    _ecs.install()
    _runtime_api.install()
    _cloudformation.install()
    _installed = True


_SERVICE_LINKED_ROLES = {
    "sagemaker": "sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
    "ecs": "ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
}


def _scalable_targets_have_a_role() -> None:
    """Without RoleARN, Application Auto Scaling uses the service-linked role and reports it
    (DescribeScalableTargets requires RoleARN); moto leaves it empty."""
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend

    original = ApplicationAutoscalingBackend.register_scalable_target

    def register(
        self: Any,
        namespace: str,
        r_id: str,
        dimension: str,
        min_capacity: Any,
        max_capacity: Any,
        role_arn: str | None,
        suspended_state: Any,
    ) -> Any:
        if not role_arn and namespace in _SERVICE_LINKED_ROLES:
            role_arn = f"arn:aws:iam::{self.account_id}:role/aws-service-role/{_SERVICE_LINKED_ROLES[namespace]}"
        return original(self, namespace, r_id, dimension, min_capacity, max_capacity, role_arn, suspended_state)

    ApplicationAutoscalingBackend.register_scalable_target = register  # type: ignore[method-assign]


def _add_tags_overwrites() -> None:
    """AddTags with a key that exists replaces its value on AWS; moto appends a duplicate."""

    def add_tags(self: SageMakerModelBackend, arn: str, tags: list[dict[str, str]]) -> list[dict[str, str]]:
        resource = self._get_resource_from_arn(arn)
        keys = {tag["Key"] for tag in tags}
        resource.tags = [t for t in resource.tags if t["Key"] not in keys] + list(tags)
        return resource.tags

    SageMakerModelBackend.add_tags = add_tags  # type: ignore[method-assign]


def _tag_lineage_entities() -> None:
    """Let moto's AddTags/ListTags/DeleteTags find lineage entities by ARN, and answer a
    ValidationException for an ARN of nothing (moto fails with a 500 there)."""
    original = SageMakerModelBackend._get_resource_from_arn

    def get_resource(self: SageMakerModelBackend, arn: str) -> Any:
        entity = store_for(self).entities.get(arn)
        found = entity if entity is not None else original(self, arn)
        if found is None:
            raise ValidationError(
                f"Could not find the resource {arn}: no SageMaker resource has that ARN in "
                f"account {self.account_id}, region {self.region_name}. Check the ARN (Describe* "
                "returns it) and that the resource was not deleted."
            )
        return found

    SageMakerModelBackend._get_resource_from_arn = get_resource  # type: ignore[method-assign]

"""CloudFormation stacks whose SageMaker, alarm and autoscaling resources go through the sandbox's
own API, as CloudFormation's resource handlers call AWS's.

moto's CloudFormation creates a SageMaker endpoint in moto's backend directly, past the
sandbox's endpoint lifecycle and serving processes; it re-creates the endpoint on any update and
ignores ``DeploymentConfig``; and it has no handler for ``AWS::CloudWatch::Alarm`` or Application
Auto Scaling. These handlers replace and add them: each resource is made by the SageMaker,
CloudWatch or Application Auto Scaling call CloudFormation would make, over HTTP to the sandbox
itself (so the call journal, fault injection and the endpoint lifecycle apply), and a stack
create waits for an endpoint to be InService, as CloudFormation does.

An endpoint update runs UpdateEndpoint with the template's ``DeploymentConfig`` and waits; when
SageMaker rolls it back (an alarm), the stack rolls back (:mod:`._stacks`: all or nothing).
Where this differs from CloudFormation: stack operations finish before the call answers; a
failure in CreateStack (not a change set) fails the call instead of rolling back.
"""

from __future__ import annotations

import os
import random
import string
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import WaiterError
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel

from mlflow_plugins.sandbox import _stacks
from mlflow_plugins.sandbox._stacks import transaction
from mlflow_plugins.sandbox._state import current

_NAME_CHARS = string.ascii_letters + string.digits


def _client(service: str, region: str) -> Any:
    """A client of the sandbox itself, with its credentials."""
    env = current().task_env(region)
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


def _name(resource_name: str) -> str:
    """A SageMaker name from CloudFormation's generated ``<stack>-<logical id>-<random>``: at most
    63 characters, as CloudFormation names them."""
    if len(resource_name) <= 63:
        return resource_name
    suffix = "".join(random.choices(_NAME_CHARS, k=12))
    return f"{resource_name[:50].rstrip('-')}-{suffix}"


def _made(name: str, undo: Any) -> None:
    """A resource this stack operation made: a rollback deletes it."""
    running = transaction()
    if running is not None:
        running.undo.append((name, undo))


def _replaced(name: str, delete: Any) -> None:
    """A resource this stack operation replaced: deleted once the operation succeeded (at once
    outside a stack operation)."""
    running = transaction()
    if running is None:
        delete()
    else:
        running.cleanup.append((name, delete))


def _stack_tags(kwargs: dict[str, Any]) -> list[dict[str, str]]:
    """The tags CloudFormation puts on every resource it makes (with the template's own)."""
    stack_id = kwargs.get("StackId")
    if not stack_id:
        return []
    return [
        {"Key": "aws:cloudformation:stack-name", "Value": stack_id.split("/")[1]},
        {"Key": "aws:cloudformation:stack-id", "Value": stack_id},
        {"Key": "aws:cloudformation:logical-id", "Value": kwargs.get("LogicalId", "")},
    ]


def _wait_delay() -> float:
    return float(os.environ.get("MLFLOW_SAGEMAKER_OPS_WAIT_DELAY", "1"))


class _Resource:
    """A resource a handler made: its physical id (what ``Ref`` returns) and its attributes. (A
    mixin: moto finds handlers among CloudFormationModel's direct subclasses.)"""

    attributes: tuple[str, ...] = ()

    def __init__(
        self, physical_id: str, region: str, values: dict[str, str] | None = None, stack: dict[str, Any] | None = None
    ) -> None:
        self.physical_id, self.region, self.values = physical_id, region, values or {}
        self.stack = stack or {}  # StackId and LogicalId, for a replacement's tags

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    def get_cfn_attribute(self, attribute_name: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name in self.values:
            return self.values[attribute_name]
        raise UnformattedGetAttTemplateException()

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> Any:
        """Replacement, CloudFormation's way for an immutable resource: the new one now, the old
        one once the whole stack operation succeeded."""
        made = cls.create_from_cloudformation_json(  # type: ignore[attr-defined]
            new_resource_name, cloudformation_json, account_id, region_name, **original_resource.stack
        )
        old = original_resource.physical_id
        _replaced(old, lambda: cls.delete_from_cloudformation_json(old, cloudformation_json, account_id, region_name))  # type: ignore[attr-defined]
        return made


class SageMakerModel(_Resource, CloudFormationModel):
    attributes = ("ModelName",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SageMaker::Model"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> SageMakerModel:
        props = cloudformation_json["Properties"]
        name = _name(props.get("ModelName") or resource_name)
        request = {
            k: props[k] for k in ("PrimaryContainer", "VpcConfig", "EnableNetworkIsolation", "Tags") if k in props
        }
        sagemaker = _client("sagemaker", region_name)
        made = sagemaker.create_model(ModelName=name, ExecutionRoleArn=props["ExecutionRoleArn"], **request)
        _made(name, lambda: sagemaker.delete_model(ModelName=name))
        return cls(made["ModelArn"], region_name, {"ModelName": name})

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        _client("sagemaker", region_name).delete_model(ModelName=resource_name.rsplit("/", 1)[-1])


class SageMakerEndpointConfig(_Resource, CloudFormationModel):
    attributes = ("EndpointConfigName",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SageMaker::EndpointConfig"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> SageMakerEndpointConfig:
        props = cloudformation_json["Properties"]
        name = _name(props.get("EndpointConfigName") or resource_name)
        keys = (
            "ProductionVariants",
            "ShadowProductionVariants",
            "DataCaptureConfig",
            "AsyncInferenceConfig",
            "KmsKeyId",
            "Tags",
        )
        sagemaker = _client("sagemaker", region_name)
        made = sagemaker.create_endpoint_config(EndpointConfigName=name, **{k: props[k] for k in keys if k in props})
        _made(name, lambda: sagemaker.delete_endpoint_config(EndpointConfigName=name))
        return cls(made["EndpointConfigArn"], region_name, {"EndpointConfigName": name})

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        _client("sagemaker", region_name).delete_endpoint_config(EndpointConfigName=resource_name.rsplit("/", 1)[-1])


class SageMakerEndpoint(_Resource, CloudFormationModel):
    attributes = ("EndpointName",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SageMaker::Endpoint"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> SageMakerEndpoint:
        props = cloudformation_json["Properties"]
        name = _name(props.get("EndpointName") or resource_name)
        sagemaker = _client("sagemaker", region_name)
        made = sagemaker.create_endpoint(
            EndpointName=name,
            EndpointConfigName=props["EndpointConfigName"],
            Tags=props.get("Tags", []) + _stack_tags(kwargs),
        )
        _made(name, lambda: cls.delete_from_cloudformation_json(made["EndpointArn"], {}, account_id, region_name))
        _in_service(sagemaker, name)
        return cls(made["EndpointArn"], region_name, {"EndpointName": name})

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> SageMakerEndpoint:
        """An update in place: UpdateEndpoint with the template's DeploymentConfig (moto deletes
        and re-creates the endpoint, which drops its traffic)."""
        props = cloudformation_json["Properties"]
        name = original_resource.values["EndpointName"]
        sagemaker = _client("sagemaker", region_name)
        previous = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        wanted = props["EndpointConfigName"]
        if previous != wanted:  # a DeploymentConfig alone changes nothing that serves
            extra = {k: props[k] for k in ("DeploymentConfig", "RetainAllVariantProperties") if k in props}
            sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=wanted, **extra)
            _in_service(sagemaker, name)
            after = sagemaker.describe_endpoint(EndpointName=name)
            if after["EndpointConfigName"] != wanted:  # SageMaker rolled it back: so does the stack
                raise RuntimeError(after.get("FailureReason") or f"endpoint {name} serves {previous} again")
            _made(f"{name} ({wanted})", lambda: _update_back(sagemaker, name, previous))
        _retag(sagemaker, original_resource.physical_id, props.get("Tags", []))
        return cls(original_resource.physical_id, region_name, {"EndpointName": name}, original_resource.stack)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        sagemaker = _client("sagemaker", region_name)
        name = resource_name.rsplit("/", 1)[-1]
        sagemaker.delete_endpoint(EndpointName=name)
        sagemaker.get_waiter("endpoint_deleted").wait(
            EndpointName=name, WaiterConfig={"Delay": _wait_delay(), "MaxAttempts": 600}
        )


class CloudWatchAlarm(_Resource, CloudFormationModel):
    attributes = ("Arn",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> CloudWatchAlarm:
        props = dict(cloudformation_json["Properties"])
        name = props.pop("AlarmName", None) or resource_name
        cloudwatch = _client("cloudwatch", region_name)
        existed = bool(cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"])
        cloudwatch.put_metric_alarm(AlarmName=name, **props)
        arn = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
        if not existed:
            _made(name, lambda: cloudwatch.delete_alarms(AlarmNames=[name]))
        return cls(name, region_name, {"Arn": arn})

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> CloudWatchAlarm:
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        _client("cloudwatch", region_name).delete_alarms(AlarmNames=[resource_name])


class ScalableTarget(_Resource, CloudFormationModel):
    """Its physical id is AWS's ``ResourceId|ScalableDimension|ServiceNamespace``."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApplicationAutoScaling::ScalableTarget"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> ScalableTarget:
        props = cloudformation_json["Properties"]
        where = {
            "ServiceNamespace": props["ServiceNamespace"],
            "ResourceId": props["ResourceId"],
            "ScalableDimension": props["ScalableDimension"],
        }
        scaling = _client("application-autoscaling", region_name)
        role = {"RoleARN": props["RoleARN"]} if props.get("RoleARN") else {}
        scaling.register_scalable_target(
            **where, MinCapacity=int(props["MinCapacity"]), MaxCapacity=int(props["MaxCapacity"]), **role
        )
        for action in props.get("ScheduledActions") or []:
            scaling.put_scheduled_action(
                **where,
                ScheduledActionName=action["ScheduledActionName"],
                Schedule=action["Schedule"],
                ScalableTargetAction={k: int(v) for k, v in (action.get("ScalableTargetAction") or {}).items()},
            )
        physical = f"{where['ResourceId']}|{where['ScalableDimension']}|{where['ServiceNamespace']}"
        if not kwargs.get("updating"):
            _made(physical, lambda: scaling.deregister_scalable_target(**where))
        return cls(physical, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> ScalableTarget:
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name, updating=True
        )

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        resource, dimension, namespace = resource_name.split("|")
        _client("application-autoscaling", region_name).deregister_scalable_target(
            ServiceNamespace=namespace, ResourceId=resource, ScalableDimension=dimension
        )


class ScalingPolicy(_Resource, CloudFormationModel):
    attributes = ("Arn",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApplicationAutoScaling::ScalingPolicy"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> ScalingPolicy:
        props = cloudformation_json["Properties"]
        resource, dimension, namespace = props["ScalingTargetId"].split("|")
        made = _client("application-autoscaling", region_name).put_scaling_policy(
            PolicyName=props["PolicyName"],
            ServiceNamespace=namespace,
            ResourceId=resource,
            ScalableDimension=dimension,
            PolicyType=props["PolicyType"],
            TargetTrackingScalingPolicyConfiguration=props["TargetTrackingScalingPolicyConfiguration"],
        )
        return cls(made["PolicyARN"], region_name, {"Arn": made["PolicyARN"]})

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> ScalingPolicy:
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        return None  # deregistering the scalable target deletes its policies, as on AWS


def _retag(sagemaker: Any, arn: str, tags: list[dict[str, str]]) -> None:
    """A Tags change, in place (CloudFormation's AddTags and DeleteTags; its own aws: tags stay)."""
    wanted = {t["Key"] for t in tags}
    stale = [
        t["Key"]
        for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]
        if t["Key"] not in wanted and not t["Key"].startswith("aws:")
    ]
    if stale:
        sagemaker.delete_tags(ResourceArn=arn, TagKeys=stale)
    if tags:
        sagemaker.add_tags(ResourceArn=arn, Tags=tags)


def _stack_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in ("StackId", "LogicalId") if k in kwargs}


def _update_back(sagemaker: Any, name: str, config: str) -> None:
    """A stack rollback after the endpoint moved: back to the config it served."""
    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=config)
    _in_service(sagemaker, name)


class EcsTaskDefinition(_Resource, CloudFormationModel):
    """A revision of the family; a change registers a new one (replacement), and the old one is
    deregistered and deleted once the stack operation succeeded."""

    attributes = ("TaskDefinitionArn",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ECS::TaskDefinition"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> EcsTaskDefinition:
        props = _camel(cloudformation_json["Properties"])
        props.setdefault("family", resource_name)
        props["tags"] = props.get("tags", []) + [{"key": t["Key"], "value": t["Value"]} for t in _stack_tags(kwargs)]
        ecs = _client("ecs", region_name)
        arn = ecs.register_task_definition(**props)["taskDefinition"]["taskDefinitionArn"]
        _made(arn, lambda: _drop_revision(ecs, arn))
        return cls(arn, region_name, {"TaskDefinitionArn": arn}, _stack_of(kwargs))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        _drop_revision(_client("ecs", region_name), resource_name)


class EcsService(_Resource, CloudFormationModel):
    """Made and updated through the sandbox's ECS (its rollouts, circuit breaker and rollback): a
    create or update waits for its deployment, and one that the circuit breaker failed fails the
    resource (the stack rolls back)."""

    attributes = ("Name", "ServiceArn")

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ECS::Service"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> EcsService:
        props = _camel(cloudformation_json["Properties"])
        props.setdefault("serviceName", resource_name)
        props["tags"] = props.get("tags", []) + [{"key": t["Key"], "value": t["Value"]} for t in _stack_tags(kwargs)]
        ecs = _client("ecs", region_name)
        service = ecs.create_service(**props)["service"]
        cluster, name = props.get("cluster", "default"), service["serviceName"]
        _made(service["serviceArn"], lambda: _delete_service(ecs, cluster, name))
        _deployed(ecs, cluster, name, service["deployments"][0]["id"])
        return cls(
            service["serviceArn"], region_name, {"Name": name, "ServiceArn": service["serviceArn"]}, _stack_of(kwargs)
        )

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> EcsService:
        props = _camel(cloudformation_json["Properties"])
        ecs = _client("ecs", region_name)
        cluster, name = props.get("cluster", "default"), original_resource.values["Name"]
        before = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
        settings = (
            "taskDefinition",
            "desiredCount",
            "networkConfiguration",
            "deploymentConfiguration",
            "loadBalancers",
        )
        changes = {k: props[k] for k in settings if k in props}
        if "healthCheckGracePeriodSeconds" in props:
            changes["healthCheckGracePeriodSeconds"] = props["healthCheckGracePeriodSeconds"]
        updated = ecs.update_service(cluster=cluster, service=name, **changes)["service"]
        primary = next(d for d in updated["deployments"] if d["status"] == "PRIMARY")
        _deployed(ecs, cluster, name, primary["id"])
        _made(
            f"{name} ({props['taskDefinition']})",
            lambda: ecs.update_service(
                cluster=cluster,
                service=name,
                taskDefinition=before["taskDefinition"],
                desiredCount=before["desiredCount"],
            ),
        )
        if props.get("tags"):
            ecs.tag_resource(resourceArn=original_resource.physical_id, tags=props["tags"])
        return cls(original_resource.physical_id, region_name, dict(original_resource.values), original_resource.stack)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        cluster, name = resource_name.split("/")[-2:]
        _delete_service(_client("ecs", region_name), cluster, name)


def _deployed(ecs: Any, cluster: str, name: str, deployment_id: str) -> None:
    """Wait for a service's deployment to end; a FAILED one (the circuit breaker) is an error."""
    ecs.get_waiter("services_stable").wait(
        cluster=cluster, services=[name], WaiterConfig={"Delay": _wait_delay(), "MaxAttempts": 1200}
    )
    service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    deployment = next((d for d in service["deployments"] if d["id"] == deployment_id), None)
    if deployment is None or deployment.get("rolloutState") == "FAILED":
        reason = (deployment or {}).get("rolloutStateReason") or "ECS rolled the deployment back"
        raise RuntimeError(f"ECS service {cluster}/{name}: {reason}")


def _delete_service(ecs: Any, cluster: str, name: str) -> None:
    ecs.delete_service(cluster=cluster, service=name, force=True)
    ecs.get_waiter("services_inactive").wait(
        cluster=cluster, services=[name], WaiterConfig={"Delay": _wait_delay(), "MaxAttempts": 1200}
    )


def _drop_revision(ecs: Any, arn: str) -> None:
    if ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "ACTIVE":
        ecs.deregister_task_definition(taskDefinition=arn)
    ecs.delete_task_definitions(taskDefinitions=[arn])


def _camel(value: Any, parent: str = "") -> Any:
    """CloudFormation's property names (PascalCase) as the ECS API's (camelCase); the log
    driver's options keep their keys."""
    if isinstance(value, list):
        return [_camel(item) for item in value]
    if not isinstance(value, dict) or parent == "Options":
        return value
    return {k[:1].lower() + k[1:]: _camel(v, k) for k, v in value.items()}


def _in_service(sagemaker: Any, name: str) -> None:
    """Wait for InService; a Failed endpoint fails the resource with SageMaker's reason."""
    try:
        sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": _wait_delay(), "MaxAttempts": 1200}
        )
    except WaiterError:
        described = sagemaker.describe_endpoint(EndpointName=name)
        raise RuntimeError(
            f"endpoint {name} is {described['EndpointStatus']}: {described.get('FailureReason') or 'no reason given'}"
        ) from None


HANDLERS = (
    SageMakerModel,
    SageMakerEndpointConfig,
    SageMakerEndpoint,
    CloudWatchAlarm,
    ScalableTarget,
    ScalingPolicy,
    EcsTaskDefinition,
    EcsService,
)


def install() -> None:
    """moto finds handlers by subclass; the sandbox's, defined after moto's, win for their type.
    Stack updates and change sets become all or nothing (:mod:`._stacks`)."""
    _stacks.install()
    for cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cache.cache_clear()
    shadowed = [h.__name__ for h in HANDLERS if parsing.get_model_map()[h.cloudformation_type()] is not h]
    if shadowed:
        raise RuntimeError(f"moto's CloudFormation handlers win over the sandbox's {shadowed}: moto changed")

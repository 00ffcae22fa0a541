"""Rules from the audit (docs/sandbox-audit.md): each test is one rule where the sandbox differed from AWS."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

SOURCE = {"SourceUri": "s3://data/train.csv"}


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


@pytest.mark.parametrize("kind", ["Artifact", "Action", "Context"])
def test_lineage_entity_names_are_unique_per_kind(aws, kind):
    """CreateArtifact/CreateAction/CreateContext: "Must be unique to your account in an Amazon Web
    Services Region" (botocore's documentation of ArtifactName, ActionName, ContextName)."""
    sm = aws("sagemaker")
    create = getattr(sm, f"create_{kind.lower()}")
    first = create(**{f"{kind}Name": "churn-data", "Source": SOURCE, f"{kind}Type": "DataSet"})[f"{kind}Arn"]
    code, message = error_of(
        create,
        **{f"{kind}Name": "churn-data", "Source": {"SourceUri": "s3://data/other.csv"}, f"{kind}Type": "DataSet"},
    )
    assert code == "ValidationException"
    assert "churn-data" in message and first in message
    listed = getattr(sm, f"list_{kind.lower()}s")()[f"{kind}Summaries"]
    assert [s[f"{kind}Arn"] for s in listed] == [first]
    # Another kind may use the same name: the rule is per entity type.
    other = "Context" if kind != "Context" else "Action"
    getattr(sm, f"create_{other.lower()}")(**{f"{other}Name": "churn-data", "Source": SOURCE, f"{other}Type": "T"})


def test_artifacts_without_a_name_are_not_constrained(aws):
    sm = aws("sagemaker")
    arns = {sm.create_artifact(Source=SOURCE, ArtifactType="DataSet")["ArtifactArn"] for _ in range(2)}
    assert len(arns) == 2


def test_renaming_an_artifact_onto_a_taken_name_is_a_conflict(aws):
    sm = aws("sagemaker")
    sm.create_artifact(ArtifactName="a", Source=SOURCE, ArtifactType="DataSet")
    b = sm.create_artifact(ArtifactName="b", Source=SOURCE, ArtifactType="DataSet")["ArtifactArn"]
    code, message = error_of(sm.update_artifact, ArtifactArn=b, ArtifactName="a")
    assert code == "ConflictException" and "'a'" in message
    assert sm.describe_artifact(ArtifactArn=b)["ArtifactName"] == "b"
    sm.update_artifact(ArtifactArn=b, ArtifactName="b")  # its own name is not a conflict


def test_list_tags_of_a_missing_resource_is_a_validation_error(aws):
    """moto answered 500 (an AttributeError) for an ARN of nothing."""
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nothing-here"
    code, message = error_of(aws("sagemaker").list_tags, ResourceArn=arn)
    assert code == "ValidationException" and arn in message


def test_variant_names_are_unique_within_an_endpoint_config(aws, hosting):
    sm = aws("sagemaker")
    hosting.model("m")
    variant = {"VariantName": "main", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    code, message = error_of(sm.create_endpoint_config, EndpointConfigName="c", ProductionVariants=[variant, variant])
    assert code == "ValidationException" and "main" in message
    code, message = error_of(
        sm.create_endpoint_config,
        EndpointConfigName="c",
        ProductionVariants=[variant],
        ShadowProductionVariants=[variant],
    )
    assert code == "ValidationException" and "main" in message
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []


SCALING = {"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}


def test_scaling_calls_on_an_unregistered_target_are_object_not_found(aws):
    """Application Auto Scaling: ObjectNotFoundException "for any operation that depends on the
    existence of a scalable target"."""
    scaling = aws("application-autoscaling")
    target = {**SCALING, "ResourceId": "endpoint/ep/variant/main"}
    assert error_of(scaling.deregister_scalable_target, **target)[0] == "ObjectNotFoundException"
    code, message = error_of(
        scaling.put_scaling_policy,
        PolicyName="p",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 10.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
        **target,
    )
    assert code == "ObjectNotFoundException" and "endpoint/ep/variant/main" in message
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []


def test_a_scalable_target_needs_the_endpoint_variant(aws, hosting):
    scaling = aws("application-autoscaling")
    code, message = error_of(
        scaling.register_scalable_target, ResourceId="endpoint/ep/variant/main", MinCapacity=1, MaxCapacity=2, **SCALING
    )
    assert code == "ValidationException" and "endpoint ep does not exist" in message
    hosting.endpoint("ep", hosting.config("c", hosting.model("m"), count=1))
    code, message = error_of(
        scaling.register_scalable_target,
        ResourceId="endpoint/ep/variant/other",
        MinCapacity=1,
        MaxCapacity=2,
        **SCALING,
    )
    assert "no production variant other" in message
    scaling.register_scalable_target(ResourceId="endpoint/ep/variant/main", MinCapacity=1, MaxCapacity=2, **SCALING)


def _scaled_ecs_service(aws) -> dict[str, str]:
    """An ECS service c/s registered as a scalable target (1 to 2 tasks); the target's keys."""
    ec2, ecs = aws("ec2"), aws("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ecs.create_cluster(clusterName="c")
    task = ecs.register_task_definition(
        family="t",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "x", "image": "nginx"}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster="c",
        serviceName="s",
        taskDefinition=task,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}},
    )
    target = {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount"}
    aws("application-autoscaling").register_scalable_target(MinCapacity=1, MaxCapacity=2, **target)
    return target


def test_deregistering_a_target_deletes_its_policies_and_their_alarms(aws):
    """Application Auto Scaling: "Deregistering a scalable target deletes the scaling policies and
    the scheduled actions that are associated with it" (a target-tracking policy's alarms with it)."""
    scaling, target = aws("application-autoscaling"), _scaled_ecs_service(aws)
    scaling.put_scaling_policy(
        PolicyName="cpu",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 60.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
        },
        **target,
    )
    scaling.put_scheduled_action(ScheduledActionName="night", Schedule="cron(0 0 * * ? *)", **target)
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"]  # the policy's own alarms
    scaling.deregister_scalable_target(**target)
    assert scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []
    assert scaling.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"] == []
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []


def test_putting_a_target_tracking_policy_again_keeps_one_set_of_alarms(aws):
    """PutScalingPolicy on an existing policy updates it: its alarms are replaced, not added to."""
    scaling, target = aws("application-autoscaling"), _scaled_ecs_service(aws)
    for value in (60.0, 70.0):
        scaling.put_scaling_policy(
            PolicyName="cpu",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": value,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            },
            **target,
        )
    assert len(aws("cloudwatch").describe_alarms()["MetricAlarms"]) == 2  # one high, one low

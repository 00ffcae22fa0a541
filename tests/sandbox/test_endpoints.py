"""Endpoint lifecycles and UpdateEndpoint rollouts, through plain boto3 and botocore waiters."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.sandbox.conftest import ALARM, SUITE_IMAGE, blue_green

BAKING = {
    "operation": "DescribeEndpoint",
    "delay": 0.05,
    "maxAttempts": 400,
    "acceptors": [
        {
            "matcher": "pathAny",
            "argument": "PendingDeploymentSummary.ProductionVariants[].VariantStatus[].Status",
            "expected": "Baking",
            "state": "success",
        },
        {"matcher": "path", "argument": "EndpointStatus", "expected": "InService", "state": "failure"},
    ],
}


def test_create_goes_creating_then_in_service_and_delete_removes_it(aws, hosting):
    sm = aws("sagemaker")
    hosting.config("v1", hosting.model("m1"))
    arn = sm.create_endpoint(EndpointName="ep", EndpointConfigName="v1")["EndpointArn"]
    described = sm.describe_endpoint(EndpointName="ep")
    assert described["EndpointStatus"] == "Creating"
    assert described["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Creating"

    aws.wait("endpoint_in_service", EndpointName="ep")
    described = sm.describe_endpoint(EndpointName="ep")
    assert described["EndpointArn"] == arn
    variant = described["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["CurrentWeight"]) == (4, 1.0)
    assert variant["DeployedImages"][0]["SpecifiedImage"] == SUITE_IMAGE
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["ep"]

    sm.delete_endpoint(EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Deleting"
    aws.wait("endpoint_deleted", EndpointName="ep")
    assert sm.list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize("create", ["model", "config", "endpoint"])
def test_duplicate_names_are_rejected_as_on_aws(aws, hosting, create):
    sm = aws("sagemaker")
    hosting.config("v1", hosting.model("m1"))
    hosting.endpoint("ep", "v1")
    calls = {
        "model": (lambda: hosting.model("m1"), 'existing model "arn:aws:sagemaker:us-east-1:123456789012:model/m1"'),
        "config": (lambda: hosting.config("v1", "m1"), "existing endpoint configuration"),
        "endpoint": (lambda: sm.create_endpoint(EndpointName="ep", EndpointConfigName="v1"), "existing endpoint"),
    }
    call, text = calls[create]
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert text in caught.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    "routing",
    [
        {"kind": "ALL_AT_ONCE", "wait": 60},
        {"kind": "CANARY", "wait": 120, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
        {"kind": "LINEAR", "wait": 30, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}},
    ],
)
def test_blue_green_update_completes_on_the_new_config(aws, hosting, routing):
    sm = aws("sagemaker")
    hosting.two_versions()
    policy = blue_green(termination=30, alarms=(hosting.alarm(),), **routing)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2", DeploymentConfig=policy)
    during = sm.describe_endpoint(EndpointName="ep")
    assert during["EndpointStatus"] == "Updating"
    assert during["EndpointConfigName"] == "v1"
    assert during["PendingDeploymentSummary"]["EndpointConfigName"] == "v2"

    aws.wait("endpoint_in_service", EndpointName="ep")
    after = sm.describe_endpoint(EndpointName="ep")
    assert after["EndpointConfigName"] == "v2"
    assert "FailureReason" not in after and "PendingDeploymentSummary" not in after
    assert after["LastDeploymentConfig"] == policy
    assert after["ProductionVariants"][0]["VariantName"] == "main"


def test_canary_rolls_back_when_its_alarm_trips_during_baking(aws, hosting):
    sm = aws("sagemaker")
    hosting.two_versions()
    policy = blue_green(
        "CANARY", wait=600, CanarySize={"Type": "CAPACITY_PERCENT", "Value": 25}, alarms=(hosting.alarm(),)
    )
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2", DeploymentConfig=policy)
    aws.custom_waiter("Baking", BAKING).wait(EndpointName="ep")
    status = sm.describe_endpoint(EndpointName="ep")["PendingDeploymentSummary"]["ProductionVariants"][0]
    assert status["VariantStatus"][0]["StatusMessage"].startswith("25%")

    aws("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx spike")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "RollingBack"
    aws.wait("endpoint_in_service", EndpointName="ep")
    after = sm.describe_endpoint(EndpointName="ep")
    assert after["EndpointConfigName"] == "v1"
    assert ALARM in after["FailureReason"]
    assert "PendingDeploymentSummary" not in after


def test_an_alarm_already_in_alarm_rolls_back_at_the_first_bake(aws, hosting):
    sm = aws("sagemaker")
    hosting.two_versions()
    aws("cloudwatch").set_alarm_state(AlarmName=hosting.alarm(), StateValue="ALARM", StateReason="bad")
    sm.update_endpoint(
        EndpointName="ep", EndpointConfigName="v2", DeploymentConfig=blue_green(wait=60, alarms=(ALARM,))
    )
    aws.wait("endpoint_in_service", EndpointName="ep")
    after = sm.describe_endpoint(EndpointName="ep")
    assert (after["EndpointConfigName"], ALARM in after["FailureReason"]) == ("v1", True)


def test_rolling_update_moves_instances_in_batches(aws, hosting):
    sm = aws("sagemaker")
    hosting.two_versions()
    policy = {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2},
            "WaitIntervalInSeconds": 120,
        }
    }
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2", DeploymentConfig=policy)
    aws.custom_waiter("Baking", BAKING).wait(EndpointName="ep")
    during = sm.describe_endpoint(EndpointName="ep")
    assert during["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert during["PendingDeploymentSummary"]["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    aws.wait("endpoint_in_service", EndpointName="ep")
    after = sm.describe_endpoint(EndpointName="ep")
    assert (after["EndpointConfigName"], after["ProductionVariants"][0]["CurrentInstanceCount"]) == ("v2", 4)


def test_a_variant_failing_its_health_check_fails_create_and_rolls_back_update(aws, hosting, sandbox):
    sm = aws("sagemaker")
    hosting.two_versions()
    sandbox.control.set_variant_health("ep", "main", healthy=False)
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2")
    aws.wait("endpoint_in_service", EndpointName="ep")
    after = sm.describe_endpoint(EndpointName="ep")
    assert after["EndpointConfigName"] == "v1"
    assert "did not pass the ping health check" in after["FailureReason"]

    sandbox.control.set_variant_health("broken", "main", healthy=False)
    sm.create_endpoint(EndpointName="broken", EndpointConfigName="v2")
    with pytest.raises(WaiterError, match="Failed"):
        aws.wait("endpoint_in_service", EndpointName="broken")
    assert "production variant main" in sm.describe_endpoint(EndpointName="broken")["FailureReason"]


def test_maximum_execution_timeout_rolls_back(aws, hosting):
    sm = aws("sagemaker")
    hosting.two_versions()
    policy = blue_green(wait=3600)
    policy["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = 600
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2", DeploymentConfig=policy)
    aws.wait("endpoint_in_service", EndpointName="ep")
    after = sm.describe_endpoint(EndpointName="ep")
    assert after["EndpointConfigName"] == "v1"
    assert "MaximumExecutionTimeoutInSeconds=600" in after["FailureReason"]


def test_retain_all_variant_properties_keeps_live_counts_unless_excluded(aws, hosting):
    sm = aws("sagemaker")
    hosting.two_versions()
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "main", "DesiredInstanceCount": 6}]
    )
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    aws.wait("endpoint_in_service", EndpointName="ep")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2", RetainAllVariantProperties=True)
    aws.wait("endpoint_in_service", EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]["CurrentInstanceCount"] == 6

    sm.update_endpoint(
        EndpointName="ep",
        EndpointConfigName="v1",
        RetainAllVariantProperties=True,
        ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredInstanceCount"}],
    )
    aws.wait("endpoint_in_service", EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]["CurrentInstanceCount"] == 4


def test_retain_deployment_config_reuses_the_last_one(aws, hosting):
    sm = aws("sagemaker")
    hosting.two_versions()
    policy = blue_green("CANARY", wait=300, CanarySize={"Type": "INSTANCE_COUNT", "Value": 2})
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2", DeploymentConfig=policy)
    aws.wait("endpoint_in_service", EndpointName="ep")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v1", RetainDeploymentConfig=True)
    aws.custom_waiter("Baking", BAKING).wait(EndpointName="ep")
    aws.wait("endpoint_in_service", EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["LastDeploymentConfig"] == policy


def test_shadow_variants_are_kept_and_described(aws, hosting):
    sm = aws("sagemaker")
    hosting.model("m1"), hosting.model("m2")
    shadow = [
        {
            "VariantName": "shadow",
            "ModelName": "m2",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 0.5,
        }
    ]
    hosting.config("v1", "m1", ShadowProductionVariants=shadow)
    assert sm.describe_endpoint_config(EndpointConfigName="v1")["ShadowProductionVariants"] == shadow
    described = hosting.endpoint("ep", "v1")
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["shadow"]
    assert described["ShadowProductionVariants"][0]["CurrentWeight"] == 0.5


@pytest.mark.parametrize(
    "case, call_kwargs, message",
    [
        ("in progress", {}, "Cannot update in-progress endpoint"),
        ("new variant name", {"variant": "other", "DeploymentConfig": blue_green()}, "same variant names"),
        (
            "canary too big",
            {"DeploymentConfig": blue_green("CANARY", CanarySize={"Type": "CAPACITY_PERCENT", "Value": 75})},
            "at most 50%",
        ),
        (
            "linear too small",
            {"DeploymentConfig": blue_green("LINEAR", LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 5})},
            "10% to 50%",
        ),
        ("unknown alarm", {"DeploymentConfig": blue_green(alarms=("nope",))}, "do not exist: nope"),
        (
            "timeout too long",
            {
                "DeploymentConfig": {
                    "RollingUpdatePolicy": {
                        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                        "WaitIntervalInSeconds": 4000,
                    }
                }
            },
            "less than or equal to 3600",
        ),
    ],
)
def test_update_endpoint_rejects_what_aws_rejects(aws, hosting, case, call_kwargs, message):
    sm = aws("sagemaker")
    call_kwargs = dict(call_kwargs)
    hosting.config("v1", hosting.model("m1"))
    hosting.config("v2", hosting.model("m2"), variant=call_kwargs.pop("variant", "main"))
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="v1")
    if case != "in progress":
        aws.wait("endpoint_in_service", EndpointName="ep")
    with pytest.raises(ClientError) as caught:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2", **call_kwargs)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


def test_rolling_update_is_refused_for_serverless(aws, hosting):
    sm = aws("sagemaker")
    hosting.model("m1")
    serverless = [
        {"VariantName": "main", "ModelName": "m1", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
    ]
    sm.create_endpoint_config(EndpointConfigName="s1", ProductionVariants=serverless)
    sm.create_endpoint_config(EndpointConfigName="s2", ProductionVariants=serverless)
    described = hosting.endpoint("ep", "s1")
    assert described["ProductionVariants"][0]["CurrentServerlessConfig"]["MemorySizeInMB"] == 2048
    rolling = {
        "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 0}
    }
    with pytest.raises(ClientError, match="not supported for serverless"):
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="s2", DeploymentConfig=rolling)


def test_endpoint_names_follow_sagemaker_rules(aws, hosting):
    hosting.config("v1", hosting.model("m1"))
    with pytest.raises(ClientError) as caught:
        aws("sagemaker").create_endpoint(EndpointName="bad_name!", EndpointConfigName="v1")
    assert "regular expression pattern" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="less than or equal to 63"):
        aws("sagemaker").create_endpoint(EndpointName="a" * 64, EndpointConfigName="v1")


def test_data_capture_is_summarised_with_every_required_member(aws, hosting):
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 30,
        "DestinationS3Uri": "s3://capture/ep",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    hosting.config(
        "v1", hosting.model("m1"), DataCaptureConfig=capture, KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/k"
    )
    summary = hosting.endpoint("ep", "v1")["DataCaptureConfig"]
    assert summary == {
        "EnableCapture": True,
        "CaptureStatus": "Started",
        "CurrentSamplingPercentage": 30,
        "DestinationS3Uri": "s3://capture/ep",
        "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
    }

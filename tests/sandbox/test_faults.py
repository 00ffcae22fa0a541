"""Fault injection: throttling and 5xx answers that botocore's retry modes retry."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.errors import AwsCallFailed, AwsThrottled, from_client_error
from mlflow_plugins.sandbox import SandboxControl
from mlflow_plugins.sandbox.control import SandboxControlError


def test_a_throttled_call_is_retried_by_boto3_and_succeeds(aws, sandbox):
    sandbox.control.add_fault("ListEndpoints", kind="throttle", count=2)
    sagemaker = make_clients(AwsSettings(region="us-east-1"))("sagemaker")
    reply = sagemaker.list_endpoints()
    assert reply["Endpoints"] == []
    assert reply["ResponseMetadata"]["RetryAttempts"] == 2
    fired = sandbox.control.faults()["fired"]
    assert [(f["operation"], f["kind"]) for f in fired] == [("ListEndpoints", "throttle")] * 2


def test_throttling_past_every_retry_becomes_a_domain_error(aws, sandbox, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    sandbox.control.add_fault("CreateEndpoint", kind="throttle", count=5)
    sagemaker = make_clients(AwsSettings(region="us-east-1"))("sagemaker")
    with pytest.raises(ClientError) as caught:
        sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="nope")
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    error = from_client_error(caught.value, fix="Try again later, or raise AWS_MAX_ATTEMPTS.")
    assert isinstance(error, AwsThrottled)
    assert "CreateEndpoint failed with ThrottlingException" in str(error)
    assert len(sandbox.control.faults()["pending"]) == 1  # 2 attempts used 2 of 5


def test_5xx_is_retried_and_an_error_fault_is_not(aws, sandbox):
    sagemaker = make_clients(AwsSettings(region="us-east-1"))("sagemaker")
    sandbox.control.add_fault("ListModels", kind="5xx", count=1, status=503)
    assert sagemaker.list_models()["ResponseMetadata"]["RetryAttempts"] == 1

    sandbox.control.add_fault("ListModels", kind="error", code="AccessDeniedException", status=400)
    with pytest.raises(ClientError) as caught:
        sagemaker.list_models()
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert type(from_client_error(caught.value, fix="x")) is AwsCallFailed


@pytest.mark.parametrize(
    "service, operation, call",
    [
        ("iam", "ListRoles", lambda c: c.list_roles()),  # query protocol
        ("cloudwatch", "DescribeAlarms", lambda c: c.describe_alarms()),  # smithy-rpc-v2-cbor
        ("ecs", "ListClusters", lambda c: c.list_clusters()),  # json
    ],
)
def test_faults_speak_each_protocol(aws, sandbox, service, operation, call):
    sandbox.control.add_fault(operation, kind="throttle", count=1, service=service)
    reply = call(make_clients(AwsSettings(region="us-east-1"))(service))
    assert reply["ResponseMetadata"]["RetryAttempts"] == 1


def test_a_fault_for_another_service_does_not_fire(aws, sandbox):
    sandbox.control.add_fault("ListModels", kind="throttle", count=1, service="ecs")
    assert aws("sagemaker").list_models()["ResponseMetadata"]["RetryAttempts"] == 0
    assert len(sandbox.control.faults()["pending"]) == 1


@pytest.mark.parametrize(
    "body, message",
    [
        ({"operation": "X", "kind": "explode"}, "kind='explode' is not one of throttle, 5xx, error"),
        ({"operation": "X", "count": 0}, "count=0 must be at least 1"),
        ({"operation": "X", "kind": "error"}, "needs a code"),
        ({"kind": "throttle"}, "needs 'operation'"),
        ({"operation": "X", "colour": "red"}, "Unknown fault key(s) ['colour']"),
    ],
)
def test_the_control_api_names_bad_fault_requests(aws, sandbox, body, message):
    with pytest.raises(SandboxControlError) as caught:
        sandbox.control._call("POST", "faults", body)
    assert message in str(caught.value)
    assert "(400)" in str(caught.value)


def test_unknown_control_routes_list_the_known_ones(sandbox):
    with pytest.raises(SandboxControlError, match="Routes: GET /_sandbox/health"):
        SandboxControl(sandbox.url)._call("GET", "nothing-here")


def test_s3_calls_are_named_and_faulted_in_rest_xml(aws, sandbox):
    """S3 tells its operations apart by method, path and query (PutObject vs UploadPart); a fault
    answers as S3 does (an <Error> document; SlowDown is 503) and botocore parses it."""
    s3 = make_clients(AwsSettings(region="us-east-1"))("s3")
    s3.create_bucket(Bucket="faults")
    sandbox.control.add_fault("PutObject", kind="throttle", count=1, service="s3")
    reply = s3.put_object(Bucket="faults", Key="a/b.txt", Body=b"x")
    assert reply["ResponseMetadata"]["RetryAttempts"] == 1
    sandbox.control.add_fault("PutObject", kind="error", code="AccessDenied", status=403, service="s3")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="faults", Key="a/c.txt", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert caught.value.operation_name == "PutObject"
    s3.list_objects_v2(Bucket="faults")
    s3.delete_objects(Bucket="faults", Delete={"Objects": [{"Key": "a/b.txt"}]})
    calls = [(c["service"], c["operation"]) for c in sandbox.control.calls()[-5:]]
    assert calls == [
        ("s3", "PutObject"),
        ("s3", "PutObject"),
        ("s3", "PutObject"),
        ("s3", "ListObjectsV2"),
        ("s3", "DeleteObjects"),
    ]


def test_after_lets_the_first_calls_through_and_fails_the_next(aws, sandbox):
    sagemaker = make_clients(AwsSettings(region="us-east-1"))("sagemaker")
    sandbox.control.add_fault("ListModels", kind="error", code="AccessDeniedException", after=2)
    sagemaker.list_models()
    sagemaker.list_models()
    with pytest.raises(ClientError):
        sagemaker.list_models()
    sagemaker.list_models()  # count 1: used up
    with pytest.raises(SandboxControlError, match="after=-1"):
        sandbox.control.add_fault("ListModels", kind="error", code="X", after=-1)

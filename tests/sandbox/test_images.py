"""Images: CreateModel refuses a malformed path; an image missing from the sandbox's ECR fails the endpoint."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, WaiterError

import mlflow_plugins
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from mlflow_plugins.sandbox.control import SandboxControlError

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
SUITE_IMAGE = f"{REGISTRY}/mlflow-sagemaker-ops:{mlflow_plugins.__version__}"


def create_model(aws, image, name="m"):
    return aws("sagemaker").create_model(
        ModelName=name, ExecutionRoleArn=EXECUTION_ROLE_ARN, PrimaryContainer={"Image": image}
    )


@pytest.mark.parametrize(
    "image",
    [
        "../../etc/passwd",
        "Upper/Case:1",
        "repo:bad tag",
        "repo:" + "t" * 129,
        f"{REGISTRY}/ops:",
        f"{REGISTRY}//ops:1",
        "ops@sha256:short",
    ],
)
def test_a_malformed_image_path_is_refused_at_create_model(aws, image):
    with pytest.raises(ClientError) as refused:
        create_model(aws, image)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "registry/repository[:tag]" in refused.value.response["Error"]["Message"] or "pattern" in str(refused.value)
    assert aws("sagemaker").list_models()["Models"] == []


@pytest.mark.parametrize(
    "image",
    [
        SUITE_IMAGE,
        "ops:1",
        "public.ecr.aws/lambda/python:3.11",
        "localhost:5000/team/serving@sha256:" + "a" * 64,
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310",
    ],
)
def test_well_formed_image_paths_are_accepted(aws, image):
    assert create_model(aws, image)["ModelArn"].endswith(":model/m")


def endpoint_with(aws, hosting, image):
    create_model(aws, image)
    hosting.config("c", "m", count=1, variant="main")
    aws("sagemaker").create_endpoint(EndpointName="ep", EndpointConfigName="c")


def test_an_image_missing_from_ecr_fails_the_endpoint_with_sagemakers_reason(aws, hosting):
    endpoint_with(aws, hosting, f"{REGISTRY}/churn-serving:7")
    with pytest.raises(WaiterError):
        aws.wait("endpoint_in_service", EndpointName="ep")
    described = aws("sagemaker").describe_endpoint(EndpointName="ep")
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"].startswith(
        "Please make sure all images included in the model for the production variant main exist, "
        "and that the execution role used to create the model has permissions to access them."
    )
    assert "repository churn-serving does not exist" in described["FailureReason"]


def test_a_tag_missing_from_an_existing_repository_fails_the_endpoint(aws, hosting):
    aws("ecr").create_repository(repositoryName="churn-serving")
    endpoint_with(aws, hosting, f"{REGISTRY}/churn-serving:7")
    with pytest.raises(WaiterError):
        aws.wait("endpoint_in_service", EndpointName="ep")
    assert "holds no image :7" in aws("sagemaker").describe_endpoint(EndpointName="ep")["FailureReason"]


def test_the_suite_image_is_in_ecr_at_start_and_after_reset(aws, sandbox, hosting):
    for _ in range(2):
        images = aws("ecr").describe_images(repositoryName="mlflow-sagemaker-ops")["imageDetails"]
        assert [i["imageTags"] for i in images] == [[mlflow_plugins.__version__]]
        sandbox.reset()
    endpoint_with(aws, hosting, SUITE_IMAGE)
    aws.wait("endpoint_in_service", EndpointName="ep")


def test_a_registered_or_put_image_lets_the_endpoint_start(aws, sandbox, hosting):
    digest = sandbox.control.register_image(f"{REGISTRY}/churn-serving:7")
    assert (
        aws("ecr").batch_get_image(repositoryName="churn-serving", imageIds=[{"imageTag": "7"}])["images"][0][
            "imageId"
        ]["imageDigest"]
        == digest
    )
    endpoint_with(aws, hosting, f"{REGISTRY}/churn-serving@{digest}")
    aws.wait("endpoint_in_service", EndpointName="ep")
    with pytest.raises(SandboxControlError, match="ECR image URI of the sandbox's account"):
        sandbox.control.register_image("ops:1")

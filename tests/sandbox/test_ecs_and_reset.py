"""ECS deployments that finish, and the sandbox's reset."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
           "maximumPercent": 200, "minimumHealthyPercent": 50}


def _service(aws):
    ecs, ec2 = aws("ecs"), aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ecs.create_cluster(clusterName="models")
    for family in ("serve-v1", "serve-v2"):
        ecs.register_task_definition(
            family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="512",
            memory="1024", containerDefinitions=[{"name": "model", "image": "ops:1", "essential": True}],
        )
    ecs.create_service(
        cluster="models", serviceName="churn", taskDefinition="serve-v1", desiredCount=2,
        launchType="FARGATE", deploymentConfiguration=BREAKER,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}},
    )
    return ecs


def test_ecs_service_deployments_complete_and_keep_the_circuit_breaker(aws):
    ecs = _service(aws)
    service = ecs.describe_services(cluster="models", services=["churn"])["services"][0]
    assert (service["runningCount"], service["deployments"][0]["rolloutState"]) == (0, "IN_PROGRESS")
    assert service["deploymentConfiguration"] == BREAKER

    aws.wait("services_stable", service="ecs", cluster="models", services=["churn"])
    service = ecs.describe_services(cluster="models", services=["churn"])["services"][0]
    assert (service["runningCount"], service["deployments"][0]["rolloutState"]) == (2, "COMPLETED")

    ecs.update_service(cluster="models", service="churn", taskDefinition="serve-v2")
    during = ecs.describe_services(cluster="models", services=["churn"])["services"][0]
    assert [d["status"] for d in during["deployments"]] == ["PRIMARY", "ACTIVE"]
    aws.wait("services_stable", service="ecs", cluster="models", services=["churn"])
    after = ecs.describe_services(cluster="models", services=["churn"])["services"][0]
    assert len(after["deployments"]) == 1
    assert after["deployments"][0]["taskDefinition"].endswith("serve-v2:1")
    assert after["deploymentConfiguration"] == BREAKER


def test_scaling_a_service_converges(aws):
    ecs = _service(aws)
    aws.wait("services_stable", service="ecs", cluster="models", services=["churn"])
    ecs.update_service(cluster="models", service="churn", desiredCount=5)
    aws.wait("services_stable", service="ecs", cluster="models", services=["churn"])
    assert ecs.describe_services(cluster="models", services=["churn"])["services"][0]["runningCount"] == 5


def test_reset_wipes_resources_and_seeds_the_execution_role_again(aws, hosting, sandbox):
    sm = aws("sagemaker")
    hosting.config("v1", hosting.model("m1"))
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="v1")
    sandbox.control.add_fault("ListModels", count=3)
    aws("iam").delete_role(RoleName="SageMakerExecutionRole")

    sandbox.control.reset()
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert sandbox.control.faults()["pending"] == []
    assert aws("iam").get_role(RoleName="SageMakerExecutionRole")["Role"]["Arn"] == EXECUTION_ROLE_ARN
    # The endpoint's creation, cut short by the reset, does not come back.
    with pytest.raises(ClientError):
        sm.describe_endpoint(EndpointName="ep")

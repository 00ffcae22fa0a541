"""ECS deployments that finish, and the sandbox's reset."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

BREAKER = {
    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    "maximumPercent": 200,
    "minimumHealthyPercent": 50,
}


def _service(aws):
    ecs, ec2 = aws("ecs"), aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ecs.create_cluster(clusterName="models")
    for family in ("serve-v1", "serve-v2"):
        ecs.register_task_definition(
            family=family,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="512",
            memory="1024",
            containerDefinitions=[{"name": "model", "image": "ops:1", "essential": True}],
        )
    ecs.create_service(
        cluster="models",
        serviceName="churn",
        taskDefinition="serve-v1",
        desiredCount=2,
        launchType="FARGATE",
        deploymentConfiguration=BREAKER,
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


def _deployments(ecs):
    return ecs.describe_services(cluster="models", services=["churn"])["services"][0]["deployments"]


def test_the_circuit_breaker_fails_a_deployment_at_its_threshold_and_rolls_back_once(aws, sandbox):
    ecs = _service(aws)
    ecs.update_service(cluster="models", service="churn", desiredCount=8)
    aws.wait("services_stable", service="ecs", cluster="models", services=["churn"])
    sandbox.control.set_ecs_service_health("models", "churn", healthy=False)
    ecs.update_service(cluster="models", service="churn", taskDefinition="serve-v2")
    failed = {
        "operation": "DescribeServices",
        "delay": 0.05,
        "maxAttempts": 600,
        "acceptors": [
            {
                "matcher": "pathAny",
                "argument": "services[0].deployments[].rolloutState",
                "expected": "FAILED",
                "state": "success",
            }
        ],
    }
    aws.custom_waiter("Failed", failed, service="ecs").wait(cluster="models", services=["churn"])
    deployments = _deployments(ecs)
    # The v2 deployment by its task definition: on a loaded machine the rollback may have failed too by now.
    bad = next(d for d in deployments if d["taskDefinition"].endswith("serve-v2:1"))
    assert bad["rolloutState"] == "FAILED" and bad["failedTasks"] >= 4  # half of 8
    assert bad["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    primary = next(d for d in deployments if d["status"] == "PRIMARY")
    assert primary["taskDefinition"].endswith("serve-v1:1")
    # Under load the rollback's own tasks may already have failed by this read (the switch is still
    # on); its reason then moves on from "rolling back" to the failure, as on AWS.
    if primary["rolloutState"] == "IN_PROGRESS":
        assert "rolling back to deploymentId" in primary["rolloutStateReason"]
    else:
        assert primary["rolloutState"] == "FAILED"
    events = [
        e["message"] for e in ecs.describe_services(cluster="models", services=["churn"])["services"][0]["events"]
    ]
    assert any("deployment failed: tasks failed to start" in m for m in events)
    assert any("rolling back to deployment" in m for m in events)
    stopped = ecs.list_tasks(cluster="models", startedBy=bad["id"], desiredStatus="STOPPED")["taskArns"]
    reasons = {t["stoppedReason"] for t in ecs.describe_tasks(cluster="models", tasks=stopped)["tasks"]}
    assert reasons == {"Task failed container health checks"}

    # The rollback's tasks fail too (the switch is still on): it fails without rolling back again.
    rollback_failed = {
        **failed,
        "acceptors": [
            {
                "matcher": "path",
                "expected": True,
                "state": "success",
                "argument": f"length(services[0].deployments[?id=='{primary['id']}' && rolloutState=='FAILED']) == `1`",
            }
        ],
    }
    aws.custom_waiter("RollbackFailed", rollback_failed, service="ecs").wait(cluster="models", services=["churn"])
    assert [d["rolloutState"] for d in _deployments(ecs) if d["status"] == "PRIMARY"] == ["FAILED"]
    sandbox.control.set_ecs_service_health("models", "churn", healthy=True)


def test_a_deleted_service_drains_and_its_name_can_be_reused(aws):
    ecs = _service(aws)
    with pytest.raises(ClientError, match="not idempotent"):
        ecs.create_service(
            cluster="models", serviceName="churn", taskDefinition="serve-v1", desiredCount=1, launchType="FARGATE"
        )
    ecs.delete_service(cluster="models", service="churn", force=True)
    assert ecs.describe_services(cluster="models", services=["churn"])["services"][0]["status"] == "DRAINING"
    aws.wait("services_inactive", service="ecs", cluster="models", services=["churn"])
    assert ecs.list_services(cluster="models")["serviceArns"] == []
    assert ecs.list_tasks(cluster="models", serviceName="churn")["taskArns"] == []
    ecs.create_service(
        cluster="models",
        serviceName="churn",
        taskDefinition="serve-v1",
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [aws("ec2").describe_subnets()["Subnets"][0]["SubnetId"]]}
        },
    )
    assert ecs.list_services(cluster="models")["serviceArns"] != []

"""The registry hooks reach ECS: a stage transition (the REST path the MLflow UI uses) deploys,
updates and deletes an ECS service through the controller, on a real ``mlflow server`` with the
app plugin and the sandbox's ECS, whose tasks run the serving runtime."""

from __future__ import annotations

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.hooks.conftest import eventually


def ecs_policy(model: str, subnet: str) -> str:
    return (
        "version: 1\ndeployments:\n  churn-ecs:\n"
        f"    model: {model}\n    stage: Production\n    target: ecs:/us-east-1\n    on_leave: delete\n    max_attempts: 3\n"
        f"    config:\n      cluster: models\n      subnets: [{subnet}]\n"
        f"      execution_role_arn: {EXECUTION_ROLE_ARN}\n      task_role_arn: {EXECUTION_ROLE_ARN}\n"
    )


def test_a_stage_change_deploys_updates_and_deletes_an_ecs_service(registry, controllers, aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    aws("ecs").create_cluster(clusterName="models")
    model = registry.new_model(versions=2)
    controller = controllers(ecs_policy(model, subnet), registry)
    ecs = aws("ecs")

    def service_version():
        found = [
            s
            for s in ecs.describe_services(cluster="models", services=["churn-ecs"], include=["TAGS"])["services"]
            if s["status"] == "ACTIVE"
        ]
        tags = {t["key"]: t["value"] for t in (found[0].get("tags") or [])} if found else {}
        return tags.get("mlflow-sagemaker-ops:model-version")

    registry.transition(model, "1", "Production")
    eventually(
        lambda: registry.tags(model, "1", "churn-ecs").get("status") == "IN_SERVICE",
        what="version 1 IN_SERVICE",
        explain=controller.output,
    )
    assert service_version() == "1"
    assert registry.tags(model, "1", "churn-ecs")["arn"].startswith("arn:aws:ecs:")

    registry.transition(model, "2", "Production")  # archives version 1
    eventually(
        lambda: registry.tags(model, "2", "churn-ecs").get("status") == "IN_SERVICE",
        what="version 2 IN_SERVICE",
        explain=controller.output,
    )
    assert service_version() == "2"
    assert registry.tags(model, "1", "churn-ecs")["status"] == "RETIRED"

    registry.transition(model, "2", "Archived")
    eventually(
        lambda: registry.tags(model, "2", "churn-ecs").get("status") == "DELETED",
        what="version 2 DELETED",
        explain=controller.output,
    )
    assert [
        s
        for s in ecs.describe_services(cluster="models", services=["churn-ecs"])["services"]
        if s["status"] == "ACTIVE"
    ] == []
    assert "ECS service churn-ecs deleted" in registry.tags(model, "2", "churn-ecs")["message"]

"""``mlflow deployments ... -t ecs`` as a subprocess against the sandbox, whose ECS tasks run the
serving runtime as processes: create, predict, update, a rollback by the circuit breaker, delete."""

from __future__ import annotations

import json

import pytest
from mlflow.deployments import get_deploy_client
from mlflow.exceptions import MlflowException

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.deploy.conftest import mlflow_predictions
from tests.serving.conftest import delivery_frame

EMPTY = {
    "services": [],
    "running tasks": [],
    "task definitions": [],
    "log groups": [],
    "archives": [],
    "scalable targets": [],
}


@pytest.fixture
def network(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    aws("ecs").create_cluster(clusterName="models")
    return {"vpc": vpc, "subnet": subnet}


def base_config(network) -> list[str]:
    settings = {
        "cluster": "models",
        "subnets": network["subnet"],
        "execution_role_arn": EXECUTION_ROLE_ARN,
        "task_role_arn": EXECUTION_ROLE_ARN,
    }
    return [arg for key, value in settings.items() for arg in ("-C", f"{key}={value}")]


def leftovers(aws) -> dict[str, list]:
    ecs, s3 = aws("ecs"), aws("s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    return {
        "services": ecs.list_services(cluster="models")["serviceArns"],
        "running tasks": ecs.list_tasks(cluster="models")["taskArns"],
        "task definitions": [
            arn
            for status in ("ACTIVE", "INACTIVE")
            for arn in ecs.list_task_definitions(status=status)["taskDefinitionArns"]
        ],
        "log groups": [g["logGroupName"] for g in aws("logs").describe_log_groups()["logGroups"]],
        "archives": [o["Key"] for b in buckets for o in s3.list_objects_v2(Bucket=b).get("Contents", [])],
        "scalable targets": aws("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")[
            "ScalableTargets"
        ],
    }


def predictions(rows, name: str = "churn", **params) -> list:
    """Through the client in this process: each ``mlflow`` CLI call costs seconds to start."""
    return get_deploy_client("ecs").predict(name, rows, params=params or None)["predictions"]


def test_a_service_is_created_updated_rolled_back_and_deleted_leaving_nothing(cli, aws, models, network, tmp_path):
    rows, _ = delivery_frame(n=4, seed=7)
    scaling = '{"min_capacity": 1, "max_capacity": 3, "target": 60}'
    created = cli(
        "create",
        "-t",
        "ecs",
        "--name",
        "churn",
        "-m",
        models["v1"],
        *base_config(network),
        "-C",
        f"autoscaling={scaling}",
    )
    assert "has started 1 tasks" in created.stderr and "has reached a steady state" in created.stderr
    (tmp_path / "in.json").write_text(rows.to_json(orient="records"))
    predicted = cli("predict", "-t", "ecs", "--name", "churn", "--input-path", str(tmp_path / "in.json")).stdout
    assert json.loads(predicted)["predictions"] == mlflow_predictions(models["v1"], rows)  # through a task's address
    got = cli("get", "-t", "ecs", "--name", "models/churn").stdout
    assert "task_definition: churn:1" in got and "running_count: 1" in got
    assert "'name': 'churn', 'cluster': 'models'" in cli("list", "-t", "ecs").stdout
    targets = leftovers(aws)["scalable targets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [("service/models/churn", 1, 3)]

    # A new model: settings are carried over, the old revision and archive go once the new one runs.
    updated = cli("update", "-t", "ecs", "--name", "churn", "-m", models["v2"])
    assert "has reached a steady state" in updated.stderr
    assert predictions(rows) == mlflow_predictions(models["v2"], rows)
    left = leftovers(aws)
    assert [arn.split("/")[-1] for arn in left["task definitions"]] == ["churn:2"]
    assert len(left["archives"]) == 1 and len(left["scalable targets"]) == 1

    # A model whose tasks exit at start: the circuit breaker fails it and ECS rolls back.
    bad = cli(
        "update",
        "-t",
        "ecs",
        "--name",
        "churn",
        "-m",
        models["v1"],
        "-C",
        'env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "soon"}',
        check=False,
    )
    assert bad.returncode != 0
    assert "ECS rolled models/churn back to churn:2" in bad.stderr
    assert "ECS deployment circuit breaker: tasks failed to start." in bad.stderr
    assert "Essential container in task exited (exit code 1)" in bad.stderr
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" in bad.stderr.split("Its last log lines:")[1]  # the runtime's own message
    assert "rolling back to deployment" in bad.stderr
    assert predictions(rows) == mlflow_predictions(models["v2"], rows)
    left = leftovers(aws)
    assert [arn.split("/")[-1] for arn in left["task definitions"]] == ["churn:2"]  # the failed revision is gone
    assert len(left["archives"]) == 1  # and so is its archive

    cli("delete", "-t", "ecs", "--name", "churn")
    assert leftovers(aws) == EMPTY


def config_of(network, **extra) -> dict:
    return {
        "cluster": "models",
        "subnets": network["subnet"],
        "execution_role_arn": EXECUTION_ROLE_ARN,
        "task_role_arn": EXECUTION_ROLE_ARN,
        **extra,
    }


def test_a_create_whose_tasks_fail_their_health_check_fails_and_leaves_nothing(aws, sandbox, models, network):
    sandbox.control.set_ecs_service_health("models", "churn", healthy=False)
    with pytest.raises(MlflowException) as failed:
        get_deploy_client("ecs").create_deployment("churn", models["v1"], config=config_of(network))
    message = str(failed.value)
    assert "ECS deployment circuit breaker: tasks failed to start." in message
    assert "Last stopped task" in message and "Task failed container health checks" in message
    assert leftovers(aws) == EMPTY
    sandbox.control.set_ecs_service_health("models", "churn", healthy=True)


def test_a_bad_config_fails_before_any_aws_call(aws, sandbox, models, network):
    before = len(sandbox.control._call("GET", "calls")["calls"])
    with pytest.raises(MlflowException, match=r"memory=3000 is not valid: .*with cpu=1024: 2048, 3072"):
        get_deploy_client("ecs").create_deployment("churn", models["v1"], config=config_of(network, memory=3000))
    assert len(sandbox.control._call("GET", "calls")["calls"]) == before


def test_a_load_balanced_service_registers_its_tasks_and_scales_on_alb_requests(aws, models, network):
    elbv2, ec2 = aws("elbv2"), aws("ec2")
    other = ec2.create_subnet(VpcId=network["vpc"], CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")["Subnet"][
        "SubnetId"
    ]
    balancer = elbv2.create_load_balancer(Name="models", Subnets=[network["subnet"], other])["LoadBalancers"][0]
    group = elbv2.create_target_group(Name="churn", Protocol="HTTP", Port=8080, VpcId=network["vpc"], TargetType="ip")[
        "TargetGroups"
    ][0]
    elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )
    scaling = {"min_capacity": 1, "max_capacity": 4, "target": 100, "metric": "ALBRequestCountPerTarget"}
    client = get_deploy_client("ecs")
    client.create_deployment(
        "churn",
        models["v1"],
        config=config_of(
            network, target_group_arn=group["TargetGroupArn"], health_check_grace_seconds=30, autoscaling=scaling
        ),
    )

    def targets() -> list:
        found = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
        return sorted((t["Target"]["Id"], t["Target"]["Port"]) for t in found)

    ecs = aws("ecs")
    tasks = ecs.describe_tasks(
        cluster="models", tasks=ecs.list_tasks(cluster="models", serviceName="churn")["taskArns"]
    )["tasks"]
    addresses = [d["value"] for t in tasks for d in t["attachments"][0]["details"] if d["name"] == "privateIPv4Address"]
    assert targets() == [(addresses[0], 8080)]
    policy = aws("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"][0]
    metric = policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    balancer_id = balancer["LoadBalancerArn"].split(":loadbalancer/")[1]
    assert metric["ResourceLabel"] == f"{balancer_id}/targetgroup/churn/{group['TargetGroupArn'].rsplit('/', 1)[1]}"

    from mlflow_plugins.aws import AwsSettings, make_clients
    from mlflow_plugins.deploy.ecs._deployer import EcsDeployer

    deployer = EcsDeployer(make_clients(AwsSettings()))
    cluster, service = deployer.locate("churn")
    assert deployer.address(cluster, service) == f"http://{balancer['DNSName']}:80"  # predict's default route
    rows, _ = delivery_frame(n=2, seed=3)
    assert predictions(rows, via="task") == mlflow_predictions(models["v1"], rows)

    # A setting alone: no new revision, the service scales, the new task joins the target group.
    updated = client.update_deployment("churn", config={"desired_count": 2})
    assert updated["task_definition"] == "churn:1" and updated["running_count"] == 2
    assert len(targets()) == 2
    client.delete_deployment("churn")
    assert targets() == [] and leftovers(aws) == EMPTY

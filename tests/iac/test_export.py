"""``export``: every target and strategy exports a template that cfn-lint passes with no error."""

from __future__ import annotations

import json

import pytest

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.deploy import make_target
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.iac.conftest import lint

ROLE = {"execution_role_arn": EXECUTION_ROLE_ARN}
SCALING = {
    "min_capacity": 1,
    "max_capacity": 4,
    "target": 100,
    "schedule": [{"name": "night", "cron": "cron(0 20 * * ? *)", "max_capacity": 1}],
}
SAGEMAKER = {
    "all_at_once": {},
    "canary": {"strategy": "canary", "canary_size": 20, "auto_alarms": True, "autoscaling": SCALING},
    "linear": {"strategy": "linear", "linear_step_size": 25, "bake_seconds": 600},
    "rolling": {"strategy": "rolling", "instance_count": 4, "max_execution_seconds": 3600},
    "serverless": {"serverless_config": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}},
    "async": {"async_inference_config": {"OutputConfig": {"S3OutputPath": "s3://b/async"}}},
    "capture and vpc": {
        "data_capture_config": {
            "EnableCapture": True,
            "InitialSamplingPercentage": 10,
            "DestinationS3Uri": "s3://b/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}],
        },
        "vpc_config": {"SecurityGroupIds": ["sg-0a1b2c3d"], "Subnets": ["subnet-0a1b2c3d"]},
        "env": {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
        "tags": {"team": "ml"},
    },
}


def target(kind: str):
    return make_target(kind, make_clients(AwsSettings()))


@pytest.mark.parametrize("case", sorted(SAGEMAKER))
def test_a_sagemaker_export_passes_cfn_lint(case, aws, models):
    template = target("sagemaker").export("churn", models["v1"], {**ROLE, **SAGEMAKER[case]})
    assert lint(template) == [], json.dumps(template, indent=1)
    resources = template["Resources"]
    assert resources["Endpoint"]["Properties"]["EndpointName"] == {"Ref": "EndpointName"}
    assert template["Parameters"]["EndpointName"]["Default"] == "churn"
    archive = resources["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"]
    bucket, key = archive[len("s3://") :].split("/", 1)
    assert aws("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0  # uploaded, and referenced
    assert template["Parameters"]["ImageUri"]["Default"].endswith(":" + __import__("mlflow_plugins").__version__)
    assert template["Outputs"]["ModelUri"]["Value"] == models["v1"]


def network(aws) -> dict:
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="models", Description="models", VpcId=vpc)["GroupId"]
    aws("ecs").create_cluster(clusterName="models")
    return {
        "cluster": "models",
        "subnets": [subnet],
        "security_groups": [group],
        "execution_role_arn": EXECUTION_ROLE_ARN,
        "task_role_arn": EXECUTION_ROLE_ARN,
    }


ECS = {
    "plain": {},
    "scaled": {
        "autoscaling": {
            "min_capacity": 1,
            "max_capacity": 3,
            "target": 60,
            "metric": "ECSServiceAverageCPUUtilization",
        },
        "desired_count": 2,
        "env": {"LOG_LEVEL": "debug"},
        "tags": {"team": "ml"},
        "circuit_breaker": False,
        "rollback": False,
    },
}


@pytest.mark.parametrize("case", sorted(ECS))
def test_an_ecs_export_passes_cfn_lint(case, aws, models):
    template = target("ecs").export("churn", models["v1"], {**network(aws), **ECS[case]})
    assert lint(template) == [], json.dumps(template, indent=1)
    service = template["Resources"]["Service"]["Properties"]
    assert service["ServiceName"] == "churn" and service["Cluster"] == {"Ref": "Cluster"}
    breaker = service["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
    assert breaker == ({"Enable": False, "Rollback": False} if case == "scaled" else {"Enable": True, "Rollback": True})
    command = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Command"]
    bucket, key = command[command.index("--model-uri") + 1][len("s3://") :].split("/", 1)
    assert aws("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0  # uploaded, and referenced
    assert ("ScalingPolicy" in template["Resources"]) == (case == "scaled")


def test_live_exports_of_an_ecs_service_and_a_multi_model_endpoint_pass_cfn_lint(aws, models):
    import yaml
    from click.testing import CliRunner

    from mlflow_plugins.cli import cli
    from mlflow_plugins.deploy.sagemaker import MultiModelDeployer

    ecs = target("ecs")
    ecs.create("churn", models["v1"], {**network(aws), **ECS["scaled"]})
    exported = CliRunner().invoke(cli, ["export", "--from-service", "models/churn"])
    assert exported.exit_code == 0, exported.output
    template = yaml.safe_load(exported.stdout)
    assert lint(template) == []
    live = aws("ecs").describe_services(cluster="models", services=["churn"])["services"][0]
    definition = aws("ecs").describe_task_definition(taskDefinition=live["taskDefinition"])["taskDefinition"]
    container = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    live_command = definition["containerDefinitions"][0]["command"]
    assert container["Command"][:-1] == live_command[:-1]
    assert container["Command"][-1].rsplit("/", 2)[1] == live_command[-1].rsplit("/", 2)[1]  # the same archive
    assert "/_exports/ecs/models/churn/" in container["Command"][-1]  # a copy the template owns
    assert template["Resources"]["Service"]["Properties"]["DesiredCount"] == 2
    assert (
        template["Resources"]["ScalingPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]
        == 60.0
    )

    MultiModelDeployer(make_clients(AwsSettings())).create_endpoint("fleet", ROLE)
    template = target("sagemaker").export_live("fleet")
    assert lint(template) == []
    assert template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["Mode"] == "MultiModel"


def test_a_shared_stack_is_imported_not_copied(aws, models):
    template = target("ecs").export("churn", models["v1"], network(aws), shared_stack="ml-network")
    assert lint(template) == []
    assert "Parameters" not in template
    service = template["Resources"]["Service"]["Properties"]
    assert service["Cluster"] == {"Fn::ImportValue": "ml-network-Cluster"}
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == {
        "Fn::Split": [",", {"Fn::ImportValue": "ml-network-Subnets"}]
    }
    roles = template["Resources"]["TaskDefinition"]["Properties"]
    assert roles["ExecutionRoleArn"] == {"Fn::ImportValue": "ml-network-ExecutionRoleArn"}


def test_a_model_on_a_multi_model_endpoint_is_not_a_stack_resource(aws, models):
    from mlflow_plugins.errors import InvalidValue

    with pytest.raises(InvalidValue, match="export --from-endpoint fleet"):
        target("sagemaker-mme").export("fleet/churn", models["v1"], None)


def test_a_live_endpoint_with_a_shadow_variant_exports_both_models(aws, models):
    sagemaker = target("sagemaker")
    sagemaker.create("churn", models["v1"], ROLE)
    sagemaker.update("churn", models["v2"], {**ROLE, "strategy": "shadow", "shadow_sampling_percent": 25})
    template = sagemaker.export_live("churn")
    assert lint(template) == []
    resources = template["Resources"]
    config = resources["EndpointConfig"]["Properties"]
    assert config["ShadowProductionVariants"][0]["ModelName"] == {"Fn::GetAtt": ["ShadowModel", "ModelName"]}
    assert config["ShadowProductionVariants"][0]["InitialVariantWeight"] == 0.25
    archives = {resources[m]["Properties"]["PrimaryContainer"]["ModelDataUrl"] for m in ("Model", "ShadowModel")}
    assert len(archives) == 2  # the production and the shadow model, each its own archive


def test_export_refuses_what_it_would_ignore_before_any_upload(tmp_path, sandbox):
    from click.testing import CliRunner

    from mlflow_plugins.cli import cli
    from tests.contract.conftest import sandbox_calls

    before = sandbox_calls(sandbox)
    cases = {
        ("--from-endpoint", "churn", "-m", "models:/churn/1"): "Drop -m",
        ("--from-endpoint", "churn", "-C", "instance_count=3"): "Allowed: strategy",
        ("--from-endpoint", "churn", "-t", "ecs"): "--from-service reads ECS",
        ("--name", "churn", "-m", "x", "-C", "dry_run=true"): "has no dry run",
        ("--name", "churn", "-m", "x", "-o", str(tmp_path)): "is a directory",
        ("--name", "churn", "-m", "x", "-o", str(tmp_path / "no" / "t.yaml")): "does not exist",
        ("--name", "churn", "-m", "x", "--format", "cdk"): "pass -o DIR",
    }
    for args, words in cases.items():
        result = CliRunner().invoke(cli, ["export", *args])
        assert result.exit_code == 2 and words in result.output, (args, result.output)
    assert sandbox_calls(sandbox) == before  # refused before any AWS call

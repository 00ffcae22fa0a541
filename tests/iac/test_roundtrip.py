"""A round trip on the sandbox: deploy directly, export the live endpoint (the ``export`` CLI),
create a CloudFormation stack from the export under another endpoint name (a parameter), and the
stack's endpoint is the direct deployment again: the same config, variants, model, scaling,
alarms and provenance, and it predicts as the model does. The template refers to a copy of the
live archive under ``_exports/``, so deleting the direct deployment leaves the stack's model."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mlflow_plugins.cli import cli
from tests.deploy.conftest import mlflow_predictions
from tests.iac.conftest import lint
from tests.iac.test_export import ROLE, SCALING, target
from tests.serving.conftest import delivery_frame

CONFIG = {
    **ROLE,
    "strategy": "canary",
    "canary_size": 20,
    "auto_alarms": True,
    "autoscaling": SCALING,
    "env": {"LOG_LEVEL": "debug"},
    "tags": {"team": "ml"},
    "data_capture_config": {
        "EnableCapture": True,
        "InitialSamplingPercentage": 10,
        "DestinationS3Uri": "s3://capture-bucket/churn",
        "CaptureOptions": [{"CaptureMode": "Input"}],
    },
}


def deployed(aws, name: str) -> dict:
    """What an endpoint serves, without the names CloudFormation or the deployer chose (alarm
    names without the endpoint's name)."""
    sm, scaling, cloudwatch = aws("sagemaker"), aws("application-autoscaling"), aws("cloudwatch")
    endpoint = sm.describe_endpoint(EndpointName=name)
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    model = sm.describe_model(ModelName=variant["ModelName"])
    resource = f"endpoint/{name}/variant/{variant['VariantName']}"
    where = {"ServiceNamespace": "sagemaker", "ResourceIds": [resource]}
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingPolicies"]
    actions = scaling.describe_scheduled_actions(ServiceNamespace="sagemaker", ResourceId=resource)["ScheduledActions"]
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    return {
        "status": endpoint["EndpointStatus"],
        "variants": [
            {k: v for k, v in variant.items() if k != "ModelName"} for variant in config["ProductionVariants"]
        ],
        "capture": config.get("DataCaptureConfig"),
        "container": {k: model["PrimaryContainer"].get(k) for k in ("Image", "Environment")},
        # the archive by its content address (the export refers to a copy of it under _exports/)
        "archive": model["PrimaryContainer"]["ModelDataUrl"].rsplit("/", 2)[1],
        "role": model["ExecutionRoleArn"],
        "scaling": [
            (t["MinCapacity"], t["MaxCapacity"]) for t in scaling.describe_scalable_targets(**where)["ScalableTargets"]
        ],
        "policies": [p["TargetTrackingScalingPolicyConfiguration"] for p in policies],
        "schedule": [(a["ScheduledActionName"], a["Schedule"], a["ScalableTargetAction"]) for a in actions],
        "alarms": sorted(
            (a["AlarmName"][len(name) :], a["MetricName"], a["Threshold"], a["ComparisonOperator"])
            for a in cloudwatch.describe_alarms(AlarmNamePrefix=f"{name}-")["MetricAlarms"]
        ),
        # CloudFormation adds its own aws:cloudformation:* tags to what it makes
        "provenance": {k: v for k, v in tags.items() if k != "mlflow-sagemaker-ops:deployment-id" and k[:4] != "aws:"},
    }


def test_a_live_endpoint_exported_and_stacked_is_the_same_deployment(aws, models, tmp_path):
    sagemaker = target("sagemaker")
    sagemaker.create("churn", models["v1"], CONFIG)
    direct = deployed(aws, "churn")
    assert direct["scaling"] == [(1, 4)] and len(direct["alarms"]) == 2 and direct["schedule"]

    # A created endpoint has no LastDeploymentConfig (SageMaker records it at UpdateEndpoint): the
    # rollout keys are given, as for mlflow deployments update.
    exported = CliRunner().invoke(
        cli,
        [
            "export",
            "--from-endpoint",
            "churn",
            "-C",
            "strategy=canary",
            "-C",
            "canary_size=20",
            "-o",
            str(tmp_path / "churn.yaml"),
        ],
    )
    assert exported.exit_code == 0, exported.output
    body = (tmp_path / "churn.yaml").read_text()
    import yaml

    template = yaml.safe_load(body)
    assert lint(template) == []
    assert template["Resources"]["Endpoint"]["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"
    ]["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}

    # The stack makes the same deployment under another name (a parameter), beside the direct one.
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(
        StackName="churn-stack",
        TemplateBody=body,
        Parameters=[{"ParameterKey": "EndpointName", "ParameterValue": "churn-stack"}],
    )
    stack = cloudformation.describe_stacks(StackName="churn-stack")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    assert deployed(aws, "churn-stack") == direct
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ServedEndpointName"] == "churn-stack" and outputs["ModelUri"] == models["v1"]

    rows, _ = delivery_frame(n=20, seed=3)
    payload = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()
    answer = sagemaker.invoke("churn-stack", payload, "application/json", {})
    assert json.loads(answer)["predictions"] == mlflow_predictions(models["v1"], rows)

    sagemaker.delete("churn", CONFIG)  # the direct deployment's archive goes; the stack's copy stays
    copy = template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"]
    assert "/_exports/churn/" in copy
    bucket, key = copy[len("s3://") :].split("/", 1)
    assert aws("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    cloudformation.delete_stack(StackName="churn-stack")
    assert aws("sagemaker").list_endpoints()["Endpoints"] == []
    assert aws("cloudwatch").describe_alarms(AlarmNamePrefix="churn-stack-")["MetricAlarms"] == []

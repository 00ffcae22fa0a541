"""``mlflow deployments ... -t sagemaker-ops`` (as a subprocess where the entry point is the point,
else in process) and get_deploy_client, against the sandbox."""

from __future__ import annotations

import json

import pytest
from mlflow.deployments import get_deploy_client

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.deploy.conftest import ROLE, alarm_while_baking, leftovers, mlflow_predictions
from tests.serving.conftest import delivery_frame


def test_create_get_predict_list_delete(cli, cli_process, aws, models, tmp_path):
    # create and predict through the entry point as a user runs it, in a process of its own (each
    # costs seconds of imports); get, list and delete through the same click command in this process.
    created = cli_process(
        "create", "-t", "sagemaker-ops", "--name", "churn", "-m", models["v1"], "-C", ROLE, "-C", "instance_count=2"
    )
    assert "python_function deployment churn is created" in created.stdout
    assert "InService" in created.stderr
    got = cli("get", "-t", "sagemaker-ops", "--name", "churn").stdout
    assert "status: InService" in got and "variants: ['primary']" in got
    rows, _ = delivery_frame(n=3, seed=4)
    (tmp_path / "in.json").write_text(rows.to_json(orient="records"))
    predicted = json.loads(
        cli_process(
            "predict", "-t", "sagemaker-ops", "--name", "churn", "--input-path", str(tmp_path / "in.json")
        ).stdout
    )
    assert len(predicted["predictions"]) == 3
    assert "churn" in cli("list", "-t", "sagemaker-ops").stdout
    cli("delete", "-t", "sagemaker-ops", "--name", "churn")
    assert leftovers(aws) == {"endpoints": [], "configs": [], "models": []}


@pytest.mark.parametrize("strategy", ["all_at_once", "canary", "linear", "rolling"])
def test_every_strategy_completes_and_keeps_the_variant_name(aws, models, strategy, caplog):
    # Through get_deploy_client: the CLI path of update is covered by the shadow, rollback and
    # settings tests, and each CLI start costs seconds of CPU.
    client = get_deploy_client("sagemaker-ops:/us-east-1")
    config = {"execution_role_arn": EXECUTION_ROLE_ARN, "instance_count": 4}
    client.create_deployment("churn", models["v1"], config=config)
    client.update_deployment("churn", models["v2"], config={**config, "strategy": strategy, "bake_seconds": 60})
    assert f"({strategy})" in caplog.text  # the deploy's progress goes to the mlflow_plugins logger
    described = aws("sagemaker").describe_endpoint(EndpointName="churn")
    assert described["EndpointStatus"] == "InService"
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["primary"]
    assert len(leftovers(aws)["models"]) == 1  # the previous model was removed once the new one served
    assert client.get_deployment("churn")["model_uri"] == models["v2"]
    assert described["LastDeploymentConfig"] == client_deployment_config(strategy)


def client_deployment_config(strategy: str) -> dict:
    from mlflow_plugins.deploy.sagemaker import deployment_config, parse

    return deployment_config(parse({"strategy": strategy, "bake_seconds": 60}))


def test_an_alarm_during_baking_rolls_back_and_fails_the_update(cli, aws, models):
    cli("create", "-t", "sagemaker-ops", "--name", "churn", "-m", models["v1"], "-C", ROLE, "-C", "instance_count=4")
    before = aws("sagemaker").describe_endpoint(EndpointName="churn")["EndpointConfigName"]
    tripper = alarm_while_baking(aws, "churn", "churn-5xx")
    tripper.start()
    failed = cli(
        "update",
        "-t",
        "sagemaker-ops",
        "--name",
        "churn",
        "-m",
        models["v2"],
        "-C",
        ROLE,
        "-C",
        "instance_count=4",
        "-C",
        "strategy=canary",
        "-C",
        "bake_seconds=900",
        "-C",
        "alarms=churn-5xx",
        check=False,
    )
    tripper.join(timeout=60)
    assert failed.returncode != 0
    assert "churn-5xx" in failed.stderr and "rolled back" in failed.stderr
    assert aws("sagemaker").describe_endpoint(EndpointName="churn")["EndpointConfigName"] == before
    assert len(leftovers(aws)["models"]) == 1  # the rolled-back model was removed


SERVERLESS = '{"MemorySizeInMB": 2048, "MaxConcurrency": 5}'


@pytest.mark.parametrize(
    "args, words",
    [
        (["-C", "instnce_type=ml.m5.large"], "Did you mean 'instance_type'?"),
        (["-C", "instance_count=many"], "instance_count='many' is not valid"),
        (
            [
                "-C",
                f"serverless_config={SERVERLESS}",
                "-C",
                'vpc_config={"Subnets": ["subnet-0a1b2c3d"], "SecurityGroupIds": ["sg-0a1b2c3d"]}',
            ],
            "cannot run in a VPC",
        ),
        (["-C", "strategy=rolling", "-C", f"serverless_config={SERVERLESS}"], "does not roll serverless"),
        (["-C", "strategy=shadow", "-C", f"serverless_config={SERVERLESS}"], "shadow variants run on instances"),
        (["-C", 'serverless_config={"MemorySizeInMB": 1000, "MaxConcurrency": 5}'], "1024 to 6144"),
        (["-C", 'env={"WORKERS": 2}'], "env: WORKERS"),
        (["-C", "shadow_sampling_percent=0"], "shadow_sampling_percent='0' is not valid: it is out of range"),
        (["--name", "bad_name!"], "breaks SageMaker's endpoint naming rule"),
        (["--name", "churn", "--no-role"], "execution_role_arn is not set"),
    ],
)
def test_bad_input_fails_with_its_message_and_creates_nothing(aws, models, args, words):
    """In this process, through MLflow's plugin loading, with the CLI's string values (each
    ``mlflow`` subprocess costs ~4 s of imports; the CLI's own error path is the test below)."""
    role = [] if "--no-role" in args else ["-C", ROLE]
    args = [a for a in args if a != "--no-role"]
    name = [] if "--name" in args else ["--name", "churn"]
    options = [*name, *role, *args]
    config = dict(value.split("=", 1) for flag, value in zip(options[::2], options[1::2]) if flag == "-C")
    deployment = dict(zip(options[::2], options[1::2]))["--name"]
    with pytest.raises(Exception) as caught:
        get_deploy_client("sagemaker-ops").create_deployment(deployment, models["v1"], config=config)
    assert words in str(caught.value)
    assert leftovers(aws) == {"endpoints": [], "configs": [], "models": []}
    assert aws("s3").list_buckets()["Buckets"] == []


def test_the_cli_prints_a_bad_input_and_exits_non_zero(cli_process, aws, models):
    failed = cli_process(
        "create",
        "-t",
        "sagemaker-ops",
        "--name",
        "churn",
        "-m",
        models["v1"],
        "-C",
        ROLE,
        "-C",
        "instnce_type=ml.m5.large",
        check=False,
    )
    assert failed.returncode != 0 and "Did you mean 'instance_type'?" in failed.stderr
    assert leftovers(aws) == {"endpoints": [], "configs": [], "models": []}


def test_a_throttled_call_is_retried_and_a_failing_one_leaves_nothing(cli, aws, sandbox, models):
    sandbox.control.add_fault("CreateEndpointConfig", kind="throttle", count=2)
    cli("create", "-t", "sagemaker-ops", "--name", "ok", "-m", models["v1"], "-C", ROLE)
    assert [f["operation"] for f in sandbox.control.faults()["fired"]] == ["CreateEndpointConfig"] * 2

    sandbox.control.add_fault(
        "CreateEndpoint",
        kind="error",
        code="ResourceLimitExceeded",
        status=400,
        message="The account-level service limit for endpoints is 1",
    )
    failed = cli("create", "-t", "sagemaker-ops", "--name", "second", "-m", models["v1"], "-C", ROLE, check=False)
    assert failed.returncode != 0
    assert (
        "CreateEndpoint failed with ResourceLimitExceeded" in failed.stderr
        and "Nothing was left behind" in failed.stderr
    )
    assert leftovers(aws)["endpoints"] == ["ok"] and len(leftovers(aws)["models"]) == 1


def test_the_python_client_creates_and_predicts(aws, models):
    client = get_deploy_client("sagemaker-ops:/us-east-1")
    config = {"execution_role_arn": EXECUTION_ROLE_ARN, "synchronous": True}
    before = dict(config)
    deployment = client.create_deployment("churn", models["v1"], config=config)
    assert deployment["flavor"] == "python_function" and deployment["status"] == "InService"
    assert config == before
    rows, _ = delivery_frame(n=4, seed=9)
    assert len(client.predict("churn", rows)["predictions"]) == 4
    with pytest.raises(Exception, match="not supported"):
        client.explain("churn", rows)
    assert [d["name"] for d in client.list_deployments()] == ["churn"]
    client.delete_deployment("churn")


# What get reads to answer (besides DescribeEndpoint, which the waiter reads anyway).
READS_OF_GET = {"ListTags", "DescribeEndpointConfig", "DescribeModel", "DescribeScalableTargets"}


def test_autoscaling_is_registered_survives_an_update_and_goes_with_delete(aws, sandbox, models):
    """In process (the CLI path of create and update is covered above and by the rollback and
    settings tests). Create's and update's answers are get's answer, built from what they wrote
    and read before writing: no read after the last write but the waiter's own."""
    client = get_deploy_client("sagemaker:/us-east-1")
    scaling = aws("application-autoscaling")

    def targets():
        return scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]

    def calls_since(start: int) -> list[str]:
        return [c["operation"] for c in sandbox.control.calls()[start:]]

    def reads_after_last_write(operations: list[str]) -> set[str]:
        last_write = max(i for i, op in enumerate(operations) if not op.startswith(("Describe", "List", "Get", "Head")))
        return set(operations[last_write + 1 :]) & READS_OF_GET

    spec = {
        "min_capacity": 2,
        "max_capacity": 6,
        "target": 150,
        "scale_in_cooldown": 300,
        "schedule": [{"name": "night", "cron": "cron(0 20 * * ? *)", "max_capacity": 2}],
    }
    config = {"execution_role_arn": EXECUTION_ROLE_ARN, "instance_count": 2, "tags": {"team": "churn"}}
    start = len(sandbox.control.calls())
    created = client.create_deployment("churn", models["v1"], config={**config, "autoscaling": spec})
    assert reads_after_last_write(calls_since(start)) == set()
    assert created == client.get_deployment("churn")
    assert created["autoscaling"] == [{"min_capacity": 2, "max_capacity": 6}]
    assert created["model_s3_uri"].startswith("s3://") and created["model_uri"] == models["v1"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets()] == [
        ("endpoint/churn/variant/primary", 2, 6)
    ]
    policy = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 150.0
    assert [
        a["ScheduledActionName"]
        for a in scaling.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
    ] == ["night"]

    # An update without the key keeps the registration; its answer reads it (the one read left).
    start = len(sandbox.control.calls())
    updated = client.update_deployment(
        "churn", models["v2"], config={**config, "strategy": "canary", "bake_seconds": 30}
    )
    assert reads_after_last_write(calls_since(start)) <= {"DescribeScalableTargets"}
    assert updated == client.get_deployment("churn")
    assert updated["model_uri"] == models["v2"] and updated["model_s3_uri"] != created["model_s3_uri"]
    assert updated["autoscaling"] == [{"min_capacity": 2, "max_capacity": 6}]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets()] == [(2, 6)]

    # A shadow, then its promotion: the answers name the production and the shadow model.
    shadowed = client.update_deployment("churn", models["v1"], config={**config, "strategy": "shadow"})
    assert shadowed == client.get_deployment("churn")
    assert shadowed["model_uri"] == models["v2"] and shadowed["shadow_model_uri"] == models["v1"]
    assert shadowed["model_s3_uri"] == updated["model_s3_uri"]
    promoted = client.update_deployment("churn", None, config=config)
    assert promoted == client.get_deployment("churn")
    assert promoted["model_uri"] == models["v1"] and promoted["shadow_model_uri"] is None
    assert promoted["model_s3_uri"] == created["model_s3_uri"]

    client.delete_deployment("churn")
    assert targets() == []


@pytest.mark.parametrize(
    "spec, words",
    [
        ('{"min_capacity": 3, "max_capacity": 2, "target": 10}', "min_capacity is above max_capacity"),
        ('{"min_capacity": 1, "max_capacity": 2, "target": 10, "step": 1}', "unknown key(s) ['step']"),
        (
            '{"min_capacity": 1, "max_capacity": 2, "target": 10, "metric": "CPUUtilization"}',
            "not a predefined SageMaker metric",
        ),
    ],
)
def test_bad_autoscaling_fails_before_any_call(aws, models, spec, words):
    config = {"execution_role_arn": EXECUTION_ROLE_ARN, "autoscaling": spec}
    with pytest.raises(Exception) as caught:
        get_deploy_client("sagemaker").create_deployment("churn", models["v1"], config=config)
    assert words in str(caught.value)
    assert leftovers(aws) == {"endpoints": [], "configs": [], "models": []}


def test_settings_survive_an_update_that_does_not_repeat_them(cli, aws, models):
    capture = (
        '{"EnableCapture": true, "InitialSamplingPercentage": 20, "DestinationS3Uri": "s3://capture/churn", '
        '"CaptureOptions": [{"CaptureMode": "Input"}]}'
    )
    cli(
        "create",
        "-t",
        "sagemaker",
        "--name",
        "churn",
        "-m",
        models["v1"],
        "-C",
        ROLE,
        "-C",
        "instance_count=3",
        "-C",
        "instance_type=ml.c5.xlarge",
        "-C",
        f"data_capture_config={capture}",
        "-C",
        'env={"LOG_LEVEL": "debug"}',
        "-C",
        'tags={"team": "risk"}',
        "-C",
        "network_isolation=true",
        "-C",
        "kms_key_id=arn:aws:kms:us-east-1:123456789012:key/abc",
    )
    sm = aws("sagemaker")
    serving = sm.describe_endpoint(EndpointName="churn")["EndpointConfigName"]
    # A dry run prints the plan: the settings carried over, only the model changes.
    planned = cli("update", "-t", "sagemaker", "--name", "churn", "-m", models["v2"], "-C", ROLE, "-C", "dry_run=true")
    assert "(dry run: nothing was written; the plan is on stderr)" in planned.stdout
    assert "update   SageMaker endpoint churn (blue/green all at once" in planned.stderr, planned.stderr
    assert "replace  SageMaker model" in planned.stderr and "endpoint config" in planned.stderr
    assert "instance" not in planned.stderr and "capture" not in planned.stderr  # carried over, unchanged
    assert sm.describe_endpoint(EndpointName="churn")["EndpointConfigName"] == serving
    cli("update", "-t", "sagemaker", "--name", "churn", "-m", models["v2"], "-C", ROLE)
    endpoint = sm.describe_endpoint(EndpointName="churn")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 3)
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert config["KmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/abc"
    assert model["PrimaryContainer"]["Environment"] == {"LOG_LEVEL": "debug"}
    assert model["EnableNetworkIsolation"] is True
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert tags["team"] == "risk" and tags["mlflow-sagemaker-ops:model-uri"] == models["v2"]
    # An explicit value still wins.
    cli("update", "-t", "sagemaker", "--name", "churn", "-m", models["v1"], "-C", ROLE, "-C", "instance_count=1")
    endpoint = sm.describe_endpoint(EndpointName="churn")
    assert endpoint["ProductionVariants"][0]["CurrentInstanceCount"] == 1


def test_auto_alarms_guard_the_rollout_and_go_with_the_deployment(cli, aws, models):
    cloudwatch = aws("cloudwatch")
    cli(
        "create",
        "-t",
        "sagemaker",
        "--name",
        "churn",
        "-m",
        models["v1"],
        "-C",
        ROLE,
        "-C",
        "instance_count=4",
        "-C",
        "auto_alarms=true",
    )
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(alarms) == {"churn-primary-5xx", "churn-primary-model-latency"}
    assert {d["Name"]: d["Value"] for d in alarms["churn-primary-5xx"]["Dimensions"]} == {
        "EndpointName": "churn",
        "VariantName": "primary",
    }

    tripper = alarm_while_baking(aws, "churn", "churn-primary-model-latency", create=False)
    tripper.start()
    failed = cli(
        "update",
        "-t",
        "sagemaker",
        "--name",
        "churn",
        "-m",
        models["v2"],
        "-C",
        ROLE,
        "-C",
        "auto_alarms=true",
        "-C",
        "strategy=canary",
        "-C",
        "bake_seconds=900",
        check=False,
    )
    tripper.join(timeout=60)
    assert failed.returncode != 0 and "churn-primary-model-latency" in failed.stderr
    assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == 2  # still guarding the live deployment
    cli("delete", "-t", "sagemaker", "--name", "churn")
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []


def test_an_async_endpoint_predicts_through_s3(aws, models):
    aws("s3").create_bucket(Bucket="async-out")
    client = get_deploy_client("sagemaker:/us-east-1")
    client.create_deployment(
        "churn-async",
        models["v1"],
        config={
            "execution_role_arn": EXECUTION_ROLE_ARN,
            "async_inference_config": {
                "OutputConfig": {"S3OutputPath": "s3://async-out/results", "S3FailurePath": "s3://async-out/failures"}
            },
        },
    )
    rows, _ = delivery_frame(n=5, seed=3)
    expected = mlflow_predictions(models["v1"], rows)
    assert client.predict("churn-async", rows)["predictions"] == expected
    outputs = aws("s3").list_objects_v2(Bucket="async-out", Prefix="results/")["Contents"]
    assert any(o["Key"].endswith(".out") for o in outputs)
    # A failed inference ends the wait as soon as its failure object appears, with its message.
    with pytest.raises(Exception, match="AsyncInferenceFailed.*distance_km"):
        client.predict("churn-async", rows.drop(columns=["distance_km"]))


def test_a_variant_name_change_under_blue_green_is_refused_before_any_change(cli, aws, models):
    cli("create", "-t", "sagemaker", "--name", "churn", "-m", models["v1"], "-C", ROLE)
    before = leftovers(aws)
    failed = cli(
        "update",
        "-t",
        "sagemaker",
        "--name",
        "churn",
        "-m",
        models["v2"],
        "-C",
        ROLE,
        "-C",
        "strategy=canary",
        "-C",
        "variant_name=blue",
        check=False,
    )
    assert failed.returncode != 0
    assert "variant_name='blue' is not valid" in failed.stderr and "-C variant_name=primary" in failed.stderr
    assert leftovers(aws) == before


def test_a_bad_update_config_fails_before_any_aws_call(aws, models, sandbox):
    from mlflow_plugins.aws import AwsSettings, make_clients
    from mlflow_plugins.deploy import make_target
    from mlflow_plugins.errors import UnknownKey

    clients = make_clients(AwsSettings(region="us-east-1"))
    calls = []
    clients("sagemaker").meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    with pytest.raises(UnknownKey):
        make_target("sagemaker", clients).update("churn", models["v2"], {"strategi": "canary"})
    assert calls == []

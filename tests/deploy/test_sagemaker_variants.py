"""Shadow variants, added variants, CSV and TargetVariant predictions, registry provenance tags,
serverless endpoints and run_local: the sagemaker target against the sandbox."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import mlflow
import pytest
from mlflow.deployments import get_deploy_client

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.deploy.conftest import MLFLOW, ROLE, leftovers, mlflow_predictions
from tests.serving.conftest import SKLEARN, Server, delivery_frame, free_port, pinned

CONFIG = {"execution_role_arn": EXECUTION_ROLE_ARN}


@pytest.fixture
def client(aws):
    return get_deploy_client("sagemaker:/us-east-1")


def invocations(aws, endpoint: str, variant: str) -> int:
    """What SageMaker's per-variant Invocations metric says (the sandbox publishes it)."""
    now = datetime.now(timezone.utc)
    stats = aws("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
    )
    return int(sum(point["Sum"] for point in stats["Datapoints"]))


def test_shadow_copies_traffic_and_a_later_update_promotes_it(cli, client, aws, models):
    client.create_deployment("churn", models["v1"], config={**CONFIG, "instance_count": 2})
    shadowed = cli(
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
        "strategy=shadow",
        "-C",
        "shadow_sampling_percent=50",
    )
    assert "(shadow)" in shadowed.stderr
    described = aws("sagemaker").describe_endpoint(EndpointName="churn")
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["primary"]
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["primary-shadow"]
    got = client.get_deployment("churn")
    assert got["model_uri"] == models["v1"] and got["shadow_model_uri"] == models["v2"]

    rows, _ = delivery_frame(n=6, seed=11)
    for _ in range(40):
        assert client.predict("churn", rows)["predictions"] == mlflow_predictions(models["v1"], rows)
    assert invocations(aws, "churn", "primary") == 40
    assert 5 <= invocations(aws, "churn", "primary-shadow") <= 35  # 50% sampled; outside is p < 1e-6

    promoted = cli("update", "-t", "sagemaker", "--name", "churn", "-C", "strategy=canary", "-C", "bake_seconds=60")
    assert "Promoting the shadow model" in promoted.stderr
    described = aws("sagemaker").describe_endpoint(EndpointName="churn")
    assert "ShadowProductionVariants" not in described
    assert client.predict("churn", rows)["predictions"] == mlflow_predictions(models["v2"], rows)
    got = client.get_deployment("churn")
    assert got["model_uri"] == models["v2"] and got["shadow_model_uri"] is None
    assert len(leftovers(aws)["models"]) == 1 and len(leftovers(aws)["configs"]) == 1


def test_an_update_without_a_model_and_no_shadow_names_the_fix(cli, aws, models):
    cli("create", "-t", "sagemaker", "--name", "churn", "-m", models["v1"], "-C", ROLE)
    failed = cli("update", "-t", "sagemaker", "--name", "churn", check=False)
    assert failed.returncode != 0
    assert "model URI (-m) is not set" in failed.stderr and "has no shadow variant to promote" in failed.stderr


def test_mode_add_adds_a_variant_and_target_variant_and_csv_reach_it(cli, client, aws, models):
    client.create_deployment("churn", models["v1"], config=CONFIG)
    cli(
        "create",
        "-t",
        "sagemaker",
        "--name",
        "churn",
        "-m",
        models["v2"],
        "-C",
        ROLE,
        "-C",
        "mode=add",
        "-C",
        "variant_name=green",
    )
    described = aws("sagemaker").describe_endpoint(EndpointName="churn")
    assert sorted(v["VariantName"] for v in described["ProductionVariants"]) == ["green", "primary"]

    rows, _ = delivery_frame(n=5, seed=12)
    for variant, version in (("green", "v2"), ("primary", "v1")):
        expected = mlflow_predictions(models[version], rows)
        assert client.predict("churn", rows, params={"TargetVariant": variant})["predictions"] == expected
        csv = rows.to_csv(index=False)
        answer = client.predict("churn", csv, params={"TargetVariant": variant, "ContentType": "text/csv"})
        assert answer["predictions"] == expected
        framed = client.predict("churn", rows, params={"TargetVariant": variant, "ContentType": "text/csv"})
        assert framed["predictions"] == expected
    assert invocations(aws, "churn", "green") == 3 and invocations(aws, "churn", "primary") == 3

    with pytest.raises(Exception, match=r"TargetVariant='blue' is not valid.*green, primary|primary, green"):
        client.predict("churn", rows, params={"TargetVariant": "blue"})
    with pytest.raises(Exception, match="variant_name='green' is not valid: mode=add adds a new variant"):
        client.update_deployment("churn", models["v2"], config={**CONFIG, "mode": "add", "variant_name": "green"})
    assert len(leftovers(aws)["models"]) == 2


def test_tags_name_the_registered_model_version_and_run(client, aws, tracking, models):
    rows, _ = delivery_frame(seed=3)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            mlflow.sklearn.load_model(models["v1"]),
            name="model",
            registered_model_name="delivery",
            input_example=rows.head(2),
            pip_requirements=pinned(*SKLEARN),
        )
    mlflow.MlflowClient().set_registered_model_alias("delivery", "champion", info.registered_model_version)
    client.create_deployment("churn", "models:/delivery@champion", config=CONFIG)
    arn = aws("sagemaker").describe_endpoint(EndpointName="churn")["EndpointArn"]
    tags = {t["Key"]: t["Value"] for t in aws("sagemaker").list_tags(ResourceArn=arn)["Tags"]}
    assert tags["mlflow-sagemaker-ops:registered-model"] == "delivery"
    assert tags["mlflow-sagemaker-ops:model-version"] == str(info.registered_model_version)
    assert tags["mlflow-sagemaker-ops:run-id"] == run.info.run_id
    model_name = aws("sagemaker").list_models()["Models"][0]["ModelArn"]
    model_tags = {t["Key"]: t["Value"] for t in aws("sagemaker").list_tags(ResourceArn=model_name)["Tags"]}
    assert model_tags["mlflow-sagemaker-ops:run-id"] == run.info.run_id
    got = client.get_deployment("churn")
    assert (got["registered_model"], got["model_version"]) == ("delivery", str(info.registered_model_version))


def test_a_serverless_endpoint_serves_and_keeps_its_config_across_an_update(client, aws, models):
    serverless = {"MemorySizeInMB": 2048, "MaxConcurrency": 5, "ProvisionedConcurrency": 1}
    client.create_deployment("churn-sl", models["v1"], config={**CONFIG, "serverless_config": serverless})
    rows, _ = delivery_frame(n=4, seed=13)
    assert client.predict("churn-sl", rows)["predictions"] == mlflow_predictions(models["v1"], rows)
    client.update_deployment("churn-sl", models["v2"], config=CONFIG)
    described = aws("sagemaker").describe_endpoint(EndpointName="churn-sl")
    assert described["ProductionVariants"][0]["CurrentServerlessConfig"] == serverless
    assert client.predict("churn-sl", rows)["predictions"] == mlflow_predictions(models["v2"], rows)


def test_an_upload_shows_a_progress_bar_and_a_redeploy_uploads_nothing(client, models, capfd, caplog):
    # The package logger's level is process-wide state: set it here, as the deploy client does on
    # first use, rather than rely on which tests ran before on this worker (with `--dist loadscope`
    # this test once saw it at NOTSET, which drops INFO records).
    caplog.set_level(logging.INFO, logger="mlflow_plugins")
    client.create_deployment("churn", models["v1"], config=CONFIG)
    first = capfd.readouterr().err
    bars = [line for line in first.splitlines() if line.strip().startswith("uploading s3://")]
    assert bars and bars[-1].rstrip().endswith("MB") and " 100% " in bars[-1]
    # The same model with another instance count: a new endpoint config, and no upload (the
    # archive is content-addressed). The same model and config would plan no change at all.
    client.update_deployment("churn", models["v1"], config={**CONFIG, "instance_count": 2})
    again = capfd.readouterr().err
    assert "uploading s3://" not in again and "uploaded 0 bytes" in caplog.text  # progress lines go to logging
    caplog.clear()
    client.update_deployment("churn", models["v1"], config={**CONFIG, "instance_count": 2})
    assert "no change (the run makes no write)" in caplog.text and "uploaded" not in caplog.text


def test_run_local_serves_the_model_with_the_suites_runtime(models, tmp_path):
    port = free_port()
    server = Server(
        [
            MLFLOW,
            "deployments",
            "run-local",
            "-t",
            "sagemaker",
            "--name",
            "local",
            "-m",
            models["v1"],
            "-C",
            f"port={port}",
        ],
        port,
    )
    try:
        server.wait_ready()
        rows, _ = delivery_frame(n=3, seed=14)
        reply = server_session_post(server.url + "/invocations", rows.to_csv(index=False), "text/csv")
        assert json.loads(reply)["predictions"] == mlflow_predictions(models["v1"], rows)
    finally:
        server.stop()
    assert "Serving" in server.output()


def server_session_post(url: str, body: str, content_type: str) -> str:
    import requests

    reply = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.text

"""Multi-model endpoints through MLflow's CLI (``create-endpoint`` ... and ``--endpoint``; in this
process but for one command, see tests/deploy/conftest.py), on the sandbox."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from pathlib import Path

import pandas as pd

from tests.deploy.conftest import ROLE, leftovers, mlflow_predictions
from tests.serving.conftest import delivery_frame


def register(name: str, model_dir: str) -> str:
    """A new version of registered model ``name`` holding ``model_dir``; its ``models:/`` URI."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id
    client.log_artifacts(run, model_dir, "model")
    client.set_terminated(run)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, client.get_run(run).info.artifact_uri + "/model", run_id=run).version
    return f"models:/{name}/{version}"


def endpoint_fields(cli, endpoint: str) -> dict[str, str]:
    """``mlflow deployments get-endpoint`` prints ``key: value`` lines."""
    out = cli("get-endpoint", "-t", "sagemaker", "--endpoint", endpoint).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def objects(aws, prefix: str) -> list[str]:
    bucket, _, key = prefix[len("s3://") :].partition("/")
    return sorted(
        o["Key"][len(key) :] for o in aws("s3").list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    )


def test_an_mme_serves_three_models_from_two_registered_models_by_name(
    cli, cli_process, models, tracking, aws, tmp_path
):
    churn, delay = f"churn{uuid.uuid4().hex[:6]}", f"delay{uuid.uuid4().hex[:6]}"
    uris = {
        "churn-a": register(churn, models["v1"]),
        "churn-b": register(churn, models["v2"]),
        "delay-a": register(delay, models["v2"]),
    }
    assert (
        "Endpoint fleet is created"
        in cli_process(  # the endpoint commands' entry point as a user runs it; the rest in process
            "create-endpoint", "-t", "sagemaker", "--endpoint", "fleet", "-C", ROLE, "-C", "instance_count=2"
        ).stdout
    )
    created = endpoint_fields(cli, "fleet")
    assert (created["status"], created["models"], created["instance_count"]) == ("InService", "[]", "2")
    for name, uri in uris.items():
        cli("create", "-t", "sagemaker", "--endpoint", "fleet", "--name", name, "-m", uri)

    # Each add wrote lineage: the endpoint's context has a deployment Action per model, each fed by
    # its registered version.
    sm = aws("sagemaker")
    context = sm.list_contexts(SourceUri=created["endpoint_arn"])["ContextSummaries"][0]["ContextArn"]
    upstream = sm.query_lineage(StartArns=[context], Direction="Ascendants", MaxDepth=2)["Vertices"]
    actions = [
        sm.describe_action(ActionName=v["Arn"].split("/")[-1])["Properties"]
        for v in upstream
        if v.get("Type") == "ModelDeployment"
    ]
    assert sorted((a["model"], a["target"], a["s3_archive"].split("/")[-3]) for a in actions) == sorted(
        (uri, "sagemaker-mme", name) for name, uri in uris.items()
    )
    assert sum(v.get("Type") == "Model" for v in upstream) == 3

    listed = cli("list", "-t", "sagemaker", "--endpoint", "fleet").stdout
    assert all(name in listed for name in uris)
    got = cli("get", "-t", "sagemaker", "--endpoint", "fleet", "--name", "churn-b").stdout
    assert f"registered_model: {churn}\n" in got and "model_version: 2\n" in got and "target_model: churn-b/" in got
    assert "'name': 'fleet'" in cli("list-endpoints", "-t", "sagemaker").stdout

    rows, _ = delivery_frame(n=40, seed=5)
    (tmp_path / "in.json").write_text(rows.to_json(orient="records"))
    expected = {
        "churn-a": mlflow_predictions(models["v1"], rows),
        "churn-b": mlflow_predictions(models["v2"], rows),
        "delay-a": mlflow_predictions(models["v2"], rows),
    }
    assert expected["churn-a"] != expected["churn-b"]  # the two models differ, so routing by name shows
    for name in uris:
        out = tmp_path / f"{name}.json"
        cli(
            "predict",
            "-t",
            "sagemaker",
            "--endpoint",
            f"fleet/{name}",
            "--input-path",
            str(tmp_path / "in.json"),
            "--output-path",
            str(out),
        )
        assert json.loads(out.read_text())["predictions"] == expected[name], name

    prefix = endpoint_fields(cli, "fleet")["model_data_prefix"]
    cli("delete", "-t", "sagemaker", "--endpoint", "fleet", "--name", "delay-a")
    assert [k for k in objects(aws, prefix) if k.startswith(("delay-a/", "_models/delay-a"))] == []
    cli("update-endpoint", "-t", "sagemaker", "--endpoint", "fleet", "-C", "instance_count=3")
    updated = endpoint_fields(cli, "fleet")
    assert (updated["instance_count"], updated["models"]) == ("3", "['churn-a', 'churn-b']")
    cli("delete-endpoint", "-t", "sagemaker", "--endpoint", "fleet")
    assert leftovers(aws) == {"endpoints": [], "configs": [], "models": []}
    assert objects(aws, prefix) == []
    cli("delete-endpoint", "-t", "sagemaker", "--endpoint", "fleet")  # idempotent, as MLflow asks


def test_a_model_replaced_while_predictions_keep_succeeding(cli, models, aws):
    from mlflow.deployments import get_deploy_client

    cli("create-endpoint", "-t", "sagemaker", "--endpoint", "swap", "-C", ROLE)
    cli("create", "-t", "sagemaker", "--endpoint", "swap", "--name", "churn", "-m", models["v1"])
    client = get_deploy_client("sagemaker")
    rows, _ = delivery_frame(n=40, seed=5)
    answers, failures, stop, first = [], [], threading.Event(), threading.Event()

    def keep_predicting() -> None:
        while not stop.is_set():
            try:
                answers.append(
                    list(client.predict(endpoint="swap", deployment_name="churn", inputs=rows)["predictions"])
                )
            except Exception as error:  # any failure during the swap fails the test
                failures.append(repr(error))
            first.set()

    worker = threading.Thread(target=keep_predicting)
    worker.start()
    try:
        # The update starts once the old model has answered: on a loaded machine the thread's first
        # pointer read could otherwise come after the update's, and the first answer be the new model's.
        assert first.wait(120)
        cli("update", "-t", "sagemaker", "--endpoint", "swap", "--name", "churn", "-m", models["v2"])
        after = len(answers)
        while len(answers) < after + 3 and not failures:
            stop.wait(0.05)
    finally:
        stop.set()
        worker.join()
    assert failures == []
    old, new = mlflow_predictions(models["v1"], rows), mlflow_predictions(models["v2"], rows)
    assert answers[0] == old and answers[-1] == new and set(map(tuple, answers)) <= {tuple(old), tuple(new)}
    prefix = client.get_endpoint("swap")["model_data_prefix"]
    archives = [k for k in objects(aws, prefix) if k.startswith("churn/")]
    assert len(archives) == 1 and client.get_deployment("churn", endpoint="swap")["target_model"] == archives[0]
    client.delete_endpoint("swap")


def test_a_model_the_image_cannot_run_is_refused_before_upload(cli, models, aws, tmp_path):
    cli("create-endpoint", "-t", "sagemaker", "--endpoint", "strict", "-C", ROLE)
    old = tmp_path / "old-sklearn"
    shutil.copytree(models["v1"], old)
    requirements = old / "requirements.txt"
    requirements.write_text(
        "".join(
            line if not line.startswith("scikit-learn") else "scikit-learn==0.24.2\n"
            for line in requirements.read_text().splitlines(keepends=True)
        )
    )
    before = objects(aws, endpoint_fields(cli, "strict")["model_data_prefix"])
    refused = cli("create", "-t", "sagemaker", "--endpoint", "strict", "--name", "legacy", "-m", str(old), check=False)
    assert refused.returncode != 0
    assert "model" in refused.stderr and "scikit-learn" in refused.stderr and "'0.24.2'" in refused.stderr
    assert "the multi-model endpoint's image cannot run it" in refused.stderr
    prefix = endpoint_fields(cli, "strict")["model_data_prefix"]
    assert objects(aws, prefix) == before == ["_image-manifest.json"]

    on_single = cli(
        "create", "-t", "sagemaker", "--endpoint", "strict", "--name", "bad name", "-m", models["v1"], check=False
    )
    assert on_single.returncode != 0 and "model name (--name)='bad name'" in on_single.stderr
    serverless = cli(
        "create-endpoint",
        "-t",
        "sagemaker",
        "--endpoint",
        "nope",
        "-C",
        ROLE,
        "-C",
        'serverless_config={"MemorySizeInMB": 2048, "MaxConcurrency": 1}',
        check=False,
    )
    assert serverless.returncode != 0 and "multi-model endpoints run on instances only" in serverless.stderr
    cli("delete-endpoint", "-t", "sagemaker", "--endpoint", "strict")
    assert leftovers(aws) == {"endpoints": [], "configs": [], "models": []}


def test_predictions_equal_the_models_own(models):
    """The reference the other tests compare with: the two models answer differently."""
    rows, _ = delivery_frame(n=40, seed=5)
    assert isinstance(rows, pd.DataFrame)
    assert mlflow_predictions(models["v1"], rows) != mlflow_predictions(models["v2"], rows)
    assert Path(models["v1"], "requirements.txt").read_text().count("scikit-learn") == 1

"""ECS mode: the model is fetched once at start from s3://, models:/ or runs:/ and cached."""

from __future__ import annotations

import json

import mlflow
import pytest
import requests

from mlflow_plugins.packaging import model_archive
from tests.serving.conftest import SKLEARN, delivery_frame, pinned, start_runtime

ONE = json.dumps({"dataframe_records": [{"distance_km": 250.0, "stops": 9, "weather": "snow"}]})


def predicts(server) -> bool:
    reply = requests.post(
        server.url + "/invocations", data=ONE, headers={"Content-Type": "application/json"}, timeout=30
    )
    return reply.status_code == 200 and reply.json()["predictions"] in ([0], [1])


def serve_uri(uri, cache, env):
    server = start_runtime("--model-uri", uri, "--cache-dir", str(cache), "--workers", "1", env=env)
    try:
        server.wait_ready()
        assert predicts(server)
    finally:
        server.stop()
    return server.output()


def test_s3_archive_is_fetched_once_then_served_from_the_cache(aws, sandbox, sklearn_model, tmp_path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(model_archive(sklearn_model))
    s3 = aws("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(archive), "models", "delivery/model.tar.gz")
    cache = tmp_path / "cache"
    first = serve_uri("s3://models/delivery/model.tar.gz", cache, sandbox.env())
    assert "fetched s3://models/delivery/model.tar.gz@" in first
    second = serve_uri("s3://models/delivery/model.tar.gz", cache, sandbox.env())
    assert "using the cached model" in second and "fetched s3://" not in second


@pytest.fixture
def registry(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("ecs-mode", artifact_location=str(tmp_path / "artifacts"))
    yield {"MLFLOW_TRACKING_URI": uri, "experiment": experiment}
    mlflow.set_tracking_uri(None)


def _log_version(experiment: str, seed: int) -> str:
    from sklearn.linear_model import LogisticRegression

    frame, label = delivery_frame(seed=seed)
    numeric = frame[["distance_km", "stops"]]
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(
            LogisticRegression().fit(numeric, label),
            name="model",
            input_example=numeric.head(2),
            registered_model_name="delivery",
            pip_requirements=pinned(*SKLEARN),
        )
    return run.info.run_id


def test_models_alias_is_resolved_to_a_version_and_runs_uri_works(registry, tmp_path):
    client = mlflow.MlflowClient()
    run_id = _log_version(registry["experiment"], seed=1)
    _log_version(registry["experiment"], seed=2)
    client.set_registered_model_alias("delivery", "champion", "1")
    env = {"MLFLOW_TRACKING_URI": registry["MLFLOW_TRACKING_URI"]}
    cache = tmp_path / "cache"
    assert "fetched models:/delivery/1" in serve_uri("models:/delivery@champion", cache, env)
    client.set_registered_model_alias("delivery", "champion", "2")
    assert "fetched models:/delivery/2" in serve_uri("models:/delivery@champion", cache, env)
    assert "fetched runs:/" in serve_uri(f"runs:/{run_id}/model", cache, env)


def test_an_unsupported_uri_fails_at_start_with_the_schemes_named(tmp_path):
    server = start_runtime("--model-uri", "ftp://host/model", "--cache-dir", str(tmp_path))
    server.process.wait(timeout=60)
    assert server.process.returncode != 0
    assert "Allowed: s3://..., models:/..., runs:/..." in server.output()

"""Lineage writes no credential: a tracking URI with a password (PostgreSQL under trust auth takes
any), a dataset source with a token, and params that look like secrets; after a password
rotation, ``lineage sync`` writes nothing new."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from tests.serving.conftest import SKLEARN, pinned

POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"
CLI = str(Path(sys.executable).parent / "mlflow-sagemaker-ops")
PASSWORD, ROTATED = "S3cret-pw", "R0tated-pw"
DATA_TOKEN = "DataTok-77"
SECRET_PARAMS = {"db_password": "hunter2-param", "api_key": "plain-looking-value", "notes": "AKIAIOSFODNN7EXAMPLE"}
SECRETS = (PASSWORD, ROTATED, DATA_TOKEN, "hunter2-param", "plain-looking-value", "AKIAIOSFODNN7EXAMPLE")


def tracking_uri(database: str, password: str) -> str:
    return f"postgresql+psycopg2://postgres:{password}@127.0.0.1:5432/{database}"


@pytest.fixture(scope="module")
def secret_model(tmp_path_factory):
    """A registered model version in an MLflow store on PostgreSQL, logged through a URI with a
    password, with secret-looking params and a dataset whose source carries a token."""
    import mlflow
    import sqlalchemy as sa
    from sklearn.linear_model import LogisticRegression

    database = f"lineage_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
    with engine.connect() as db:
        db.execute(sa.text(f"CREATE DATABASE {database}"))
    engine.dispose()
    uri = tracking_uri(database, PASSWORD)
    artifacts = tmp_path_factory.mktemp("secret-artifacts")
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("secrets", artifact_location=artifacts.as_uri())
        frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_params({"learning_rate": 0.1, **SECRET_PARAMS})
            source = f"https://bot:{DATA_TOKEN}@data.example.com/d.parquet?X-Amz-Signature={DATA_TOKEN}&v=2"
            dataset = mlflow.data.from_pandas(frame, source=source, name="deliveries", targets="y")
            mlflow.log_input(dataset, context="training")
            name = f"secret-{uuid.uuid4().hex[:6]}"
            mlflow.sklearn.log_model(
                LogisticRegression().fit(frame[["a"]], frame["y"]),
                name="model",
                registered_model_name=name,
                pip_requirements=pinned(*SKLEARN),
            )
    finally:
        mlflow.set_tracking_uri(None)
    return database, name


def sync(database: str, model: str, password: str, sandbox_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **sandbox_env, "MLFLOW_TRACKING_URI": tracking_uri(database, password)}
    done = subprocess.run(
        [CLI, "lineage", "sync", "--model", model], capture_output=True, text=True, env=env, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def every_entity(sm) -> list[dict]:
    """Every lineage entity and association the sandbox holds, described."""
    found = []
    for page in sm.get_paginator("list_contexts").paginate():
        found += [sm.describe_context(ContextName=c["ContextName"]) for c in page["ContextSummaries"]]
    for page in sm.get_paginator("list_actions").paginate():
        found += [sm.describe_action(ActionName=a["ActionName"]) for a in page["ActionSummaries"]]
    for page in sm.get_paginator("list_artifacts").paginate():
        found += [sm.describe_artifact(ArtifactArn=a["ArtifactArn"]) for a in page["ArtifactSummaries"]]
    for page in sm.get_paginator("list_associations").paginate():
        found += page["AssociationSummaries"]
    return found


def test_no_credential_reaches_lineage_and_a_password_rotation_writes_nothing(secret_model, aws, sandbox):
    database, model = secret_model
    sm = aws("sagemaker")
    first = sync(database, model, PASSWORD, sandbox.env())
    assert " 0 writes" not in first.stdout

    written = every_entity(sm)
    text = json.dumps(written, default=str)
    leaked = [s for s in SECRETS if s in text + first.stdout + first.stderr]
    assert not leaked, f"{leaked} written to lineage or printed"
    run = next(e for e in written if e.get("ActionType") == "ModelTraining")
    assert run["Properties"]["param.learning_rate"] == "0.1" and run["Properties"]["mlflow.withheld"] == "3"
    assert not {"param.db_password", "param.api_key", "param.notes"} & set(run["Properties"])
    model_artifact = next(e for e in written if e.get("ArtifactType") == "Model")
    assert model_artifact["Properties"]["tracking_uri"] == f"postgresql+psycopg2://127.0.0.1:5432/{database}"
    dataset = next(e for e in written if e.get("ArtifactType") == "DataSet")
    assert dataset["Source"]["SourceUri"] == "https://data.example.com/d.parquet?v=2"

    rotated = sync(database, model, ROTATED, sandbox.env())
    assert " 0 writes" in rotated.stdout, rotated.stdout  # the same identities: nothing new, nothing updated
    assert len(every_entity(sm)) == len(written)


def test_an_unreachable_tracking_server_is_one_line_without_the_password(tmp_path):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://bob:{PASSWORD}@127.0.0.1:{port}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "AWS_REGION": "us-east-1",
    }
    done = subprocess.run(
        [CLI, "lineage", "sync", "--model", "m"], capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and f"http://127.0.0.1:{port}" in done.stderr, done.stderr
    assert PASSWORD not in done.stderr + done.stdout

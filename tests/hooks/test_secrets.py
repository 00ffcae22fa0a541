"""No secret is written anywhere: a full run (a real ``mlflow server`` with the app plugin, the
controller as a subprocess, the sandbox) with a password in the tracking URI (PostgreSQL under
trust auth takes any; an HTTP server without auth ignores it) and in the controller's database
URI, and run params that look like secrets. Every log, tag, state row, AWS resource, lineage
entity and HTTP response of the run is searched for them; then a password rotation makes
``lineage sync`` write nothing."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.hooks.conftest import BIN, eventually, fresh_postgres_db, policy_text, start_registry
from tests.serving.conftest import save_sklearn_model

TRACKING_PASSWORD, ROTATED, DB_PASSWORD = "S3cret-pw", "R0tated-pw", "Db-S3cret-42"
SECRET_PARAMS = {"db_password": "hunter2-param", "api_key": "plain-looking-value", "notes": "AKIAIOSFODNN7EXAMPLE"}
SECRETS = (TRACKING_PASSWORD, ROTATED, DB_PASSWORD, *SECRET_PARAMS.values())


@dataclass
class Setup:
    registry: Any
    tracking: str  # the tracking URI with its password
    clean: str  # the same without it
    db: str
    model: str


def with_password(uri: str, password: str, user: str) -> str:
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest.split('@', 1)[-1]}"


def _secret_run(client: Any, model_dir: Path, artifact_location: str | None = None) -> str:
    """A run with params that look like secrets and the model, registered as a version of a new model."""
    experiment = client.create_experiment(f"secrets-{uuid.uuid4().hex[:6]}", artifact_location=artifact_location)
    run = client.create_run(experiment).info.run_id
    client.log_param(run, "learning_rate", "0.1")
    for key, value in SECRET_PARAMS.items():
        client.log_param(run, key, value)
    client.log_artifacts(run, str(model_dir), "model")
    client.set_terminated(run)
    name = f"s{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    client.create_model_version(name, f"{client.get_run(run).info.artifact_uri}/model", run_id=run)
    return name


@pytest.fixture(params=["http", "postgresql"])
def setup(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"secrets-{request.param}")
    if request.param == "http":  # the server has no auth: any user and password are let through
        registry = start_registry(
            root, f"sqlite:///{root / 'mlflow.db'}", app=True, db=f"sqlite:///{root / 'hooks.db'}"
        )
        tracking = with_password(registry.url, TRACKING_PASSWORD, "alice")
        model = _secret_run(registry.client(), save_sklearn_model(root / "secret-model", seed=3))
        db = registry.db
    else:  # the controller reads the registry from PostgreSQL directly, with a password (trust auth ignores it)
        backend = fresh_postgres_db()
        hooks_db = with_password(fresh_postgres_db(), DB_PASSWORD, "postgres")
        registry = start_registry(root, backend, app=True, db=hooks_db)
        tracking = with_password(backend, TRACKING_PASSWORD, "postgres")
        from mlflow.tracking import MlflowClient

        model = _secret_run(
            MlflowClient(tracking),
            save_sklearn_model(root / "secret-model", seed=3),
            (root / "local-artifacts").as_uri(),
        )
        db = hooks_db
    clean = tracking.replace(f"{tracking.split('://')[1].split('@')[0]}@", "")
    yield Setup(registry, tracking, clean, db, model)
    registry.server.stop()


def test_no_secret_is_logged_tagged_stored_or_answered_and_a_rotation_writes_no_lineage(
    setup, controllers, aws, sandbox
):
    registry, model = setup.registry, setup.model
    deployment = f"{model}-prod"
    controller = controllers(
        policy_text(deployment, model), registry, "--tracking-uri", setup.tracking, "--poll-seconds", "2", db=setup.db
    )
    registry.transition(model, "1", "Production")
    eventually(
        lambda: registry.tags(model, "1", deployment).get("lineage") == "written",
        timeout=180,
        what="the deploy and its lineage",
        explain=controller.output,
    )

    answers = [
        requests.get(f"{controller.url}/health", timeout=10).text,
        requests.post(f"{controller.url}/wake", timeout=10).text,
        requests.post(f"{controller.url}/webhooks/mlflow", data=b"[]", timeout=10).text,
    ]
    hooks = [_cli("hooks", "status", "--db", setup.db), _cli("hooks", "log", "--db", setup.db, "--json")]
    sync = _cli("lineage", "sync", "--model", model, env={"MLFLOW_TRACKING_URI": setup.tracking, **sandbox.env()})
    rotated = _cli(
        "lineage",
        "sync",
        "--model",
        model,
        env={"MLFLOW_TRACKING_URI": setup.tracking.replace(TRACKING_PASSWORD, ROTATED), **sandbox.env()},
    )
    controller.stop()

    written = {
        "controller log": controller.output(),
        "mlflow server log": registry.server.output(),
        "receiver answers": answers,
        "hooks CLI": hooks,
        "lineage CLI": [sync, rotated],
        "mlflow tags": _mlflow_tags(registry.client(), model),
        "controller state": _state(setup.db),
        "aws resources": _aws_resources(aws),
        "lineage": _lineage(aws("sagemaker")),
    }
    for where, value in written.items():
        text = json.dumps(value, default=str)
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, f"{leaked} found in the {where}"
    assert f"registry {setup.clean}" in controller.output()  # said, without the password
    run = next(e for e in written["lineage"] if e.get("ActionType") == "ModelTraining")
    assert run["Properties"]["param.learning_rate"] == "0.1" and run["Properties"]["mlflow.withheld"] == "3"
    assert " 0 writes" in rotated.split("\n")[0], rotated  # a rotated password names the same entities


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "mlflow-sagemaker-ops"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _mlflow_tags(client: Any, model: str) -> dict[str, Any]:
    versions = client.search_model_versions(f"name='{model}'")
    return {"model": client.get_registered_model(model).tags, "versions": {v.version: v.tags for v in versions}}


def _state(db: str) -> dict[str, Any]:
    from registry_hooks.store import Store

    store = Store(db)
    try:
        return {
            "rows": [row.__dict__ for row in store.all()],
            "audit": store.audit_log(limit=10_000),
            "events": store.events_after(0),
        }
    finally:
        store.close()


def _aws_resources(aws: Any) -> dict[str, Any]:
    sm, s3 = aws("sagemaker"), aws("s3")
    found: dict[str, Any] = {"endpoints": [], "configs": [], "models": [], "objects": []}
    for endpoint in sm.list_endpoints()["Endpoints"]:
        described = sm.describe_endpoint(EndpointName=endpoint["EndpointName"])
        found["endpoints"].append([described, sm.list_tags(ResourceArn=described["EndpointArn"])["Tags"]])
    for config in sm.list_endpoint_configs()["EndpointConfigs"]:
        described = sm.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
        found["configs"].append([described, sm.list_tags(ResourceArn=described["EndpointConfigArn"])["Tags"]])
    for model in sm.list_models()["Models"]:
        described = sm.describe_model(ModelName=model["ModelName"])  # the container's Environment too
        found["models"].append([described, sm.list_tags(ResourceArn=described["ModelArn"])["Tags"]])
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                head = s3.head_object(Bucket=bucket["Name"], Key=item["Key"])
                tags = s3.get_object_tagging(Bucket=bucket["Name"], Key=item["Key"])["TagSet"]
                found["objects"].append([bucket["Name"], item["Key"], head.get("Metadata"), tags])
    assert found["endpoints"] and found["models"] and found["objects"], found  # the run did deploy
    return found


def _lineage(sm: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in sm.get_paginator("list_contexts").paginate():
        found += [sm.describe_context(ContextName=c["ContextName"]) for c in page["ContextSummaries"]]
    for page in sm.get_paginator("list_actions").paginate():
        found += [sm.describe_action(ActionName=a["ActionName"]) for a in page["ActionSummaries"]]
    for page in sm.get_paginator("list_artifacts").paginate():
        found += [sm.describe_artifact(ArtifactArn=a["ArtifactArn"]) for a in page["ArtifactSummaries"]]
    for page in sm.get_paginator("list_associations").paginate():
        found += page["AssociationSummaries"]
    return found

"""Lineage sync against the sandbox's Lineage API and a real MLflow tracking server: the chain
from an endpoint back to its datasets and parent model, idempotency, resume, and AWS's limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlflow_plugins.lineage import limits, show
from mlflow_plugins.lineage.sync import LineageSync
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.serving.conftest import SKLEARN, pinned

CLI = str(Path(sys.executable).parent / "mlflow-sagemaker-ops")
LONG = "x" * 3000


def _train(name: str, params: dict, parent: str | None = None, experiment: str = "lineage") -> str:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    # Not mlflow.set_experiment: it sets MLFLOW_EXPERIMENT_ID in this worker's environment, which
    # later `mlflow run` subprocesses would inherit beside their own --experiment-name.
    found = mlflow.MlflowClient().get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else mlflow.create_experiment(experiment)
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0], "y": [0, 0, 1, 1]})
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(params)
        if parent:
            mlflow.set_tags({"parent.registered_model": name, "parent.version": parent})
        mlflow.log_input(
            mlflow.data.from_pandas(
                frame, source=f"s3://data/{run.info.run_id}.parquet", name="deliveries", targets="y"
            ),
            context="training",
        )
        model = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, pip_requirements=pinned(*SKLEARN)
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def registered(tracking_server):
    """Two versions, the second retrained from the first, made once for the module (each test
    mirrors them into a freshly reset sandbox)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_server.url)
    try:
        name = f"churn-{__import__('uuid').uuid4().hex[:6]}"
        many = {f"p{i:02d}": i for i in range(40)} | {"notes": LONG}
        v1 = _train(name, many, experiment="lineage-" + "e" * 200)
        v2 = _train(name, {"strategy": "rehearsal"}, parent=v1)
    finally:
        mlflow.set_tracking_uri(None)
    return name, v1, v2


@pytest.fixture
def lineage_models(registered, tracking, aws):
    return (*registered, aws("sagemaker"))


def _ascendants(sm, start: str) -> set[str]:
    found = sm.query_lineage(StartArns=[start], Direction="Ascendants", IncludeEdges=True, MaxDepth=10)
    return {v["Type"] for v in found["Vertices"] if "Type" in v}, found


def test_the_chain_from_an_endpoint_back_to_datasets_and_parent_is_written_once(lineage_models, aws, tracking):
    name, v1, v2, sm = lineage_models
    from mlflow.deployments import get_deploy_client

    deployed = get_deploy_client("sagemaker").create_deployment(
        "churn-ep", f"models:/{name}/{v2}", config={"execution_role_arn": EXECUTION_ROLE_ARN}
    )
    assert deployed["lineage"] == "written"  # the target mirrors a registered version by itself
    config = sm.describe_endpoint_config(EndpointConfigName=deployed["endpoint_config"])
    served = config["ProductionVariants"][0]["ModelName"]
    archive = sm.describe_model(ModelName=served)["PrimaryContainer"]["ModelDataUrl"]
    assert deployed["model_s3_uri"] == archive
    (action,) = sm.list_actions(ActionType="ModelDeployment")["ActionSummaries"]
    properties = sm.describe_action(ActionName=action["ActionName"])["Properties"]
    assert (properties["target"], properties["s3_archive"], properties["model"]) == (
        "sagemaker",
        archive,
        f"models:/{name}/{v2}",
    )

    start = show.start_for_endpoint(sm, "churn-ep")
    types, found = _ascendants(sm, start)
    assert {"ModelDeployment", "Model", "ModelTraining", "DataSet"} <= types
    kinds = {edge["AssociationType"] for edge in found["Edges"]}
    assert {"AssociatedWith", "ContributedTo", "Produced", "DerivedFrom"} <= kinds
    models = [v for v in found["Vertices"] if v.get("Type") == "Model"]
    assert len(models) == 2  # the version and its parent, through DerivedFrom
    datasets = [v for v in found["Vertices"] if v.get("Type") == "DataSet"]
    assert len(datasets) == 2  # each version's training data

    # A real client reads what was written: the SageMaker SDK's lineage query walks from the
    # endpoint's context up to the datasets, and its Artifact loads the dataset's source.
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.lineage.artifact import Artifact
    from sagemaker.core.lineage.query import LineageQuery, LineageQueryDirectionEnum

    session = Session(boto_session=aws.session, sagemaker_client=sm)
    walked = LineageQuery(session).query(start_arns=[start], direction=LineageQueryDirectionEnum.ASCENDANTS)
    sdk_datasets = [v for v in walked.vertices if v.lineage_source == "DataSet" and v.lineage_entity == "Artifact"]
    assert len(sdk_datasets) == 2
    sources = {Artifact.load(artifact_arn=v.arn, sagemaker_session=session).source.source_uri for v in sdk_datasets}
    assert all(uri.startswith("s3://data/") and uri.endswith(".parquet") for uri in sources) and len(sources) == 2

    # Running it again creates nothing, and an unchanged re-sync only reads.
    again = LineageSync(sm)
    again.sync_model(name)
    assert again.writer.writes == 0 and again.writer.reads > 0

    # The limits: 41 params (one of 3000 characters) and a 207-character experiment name fit.
    described = [
        sm.describe_action(ActionName=a["ActionName"])
        for a in sm.list_actions(ActionType="ModelTraining")["ActionSummaries"]
    ]
    assert all(
        len(d["Properties"]) <= limits.property_count("Action") and len(d["ActionName"]) <= 120 for d in described
    )
    crowded = next(d["Properties"] for d in described if "param.p00" in d["Properties"])
    assert len(crowded) == limits.property_count("Action") and int(crowded["mlflow.omitted"]) > 0
    notes = crowded["param.notes"]
    assert len(notes) == limits.property_value_limit("Action") and notes.startswith("xxx") and "…sha256=" in notes
    contexts = sm.list_contexts(ContextType="MLflowExperiment")["ContextSummaries"]
    assert contexts and all(len(c["ContextName"]) <= 120 for c in contexts)


def test_an_interrupted_sync_is_finished_by_the_next_and_the_cli_reports_its_calls(
    lineage_models, aws, sandbox, tracking
):
    name, v1, v2, sm = lineage_models
    sandbox.control.add_fault("AddAssociation", kind="error", code="ValidationException", count=1, service="sagemaker")
    cut = LineageSync(sm)
    with pytest.raises(Exception):
        cut.sync_model(name)
    env = {**__import__("os").environ}
    first = subprocess.run(
        [CLI, "lineage", "sync", "--model", name], capture_output=True, text=True, env=env, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert "writes" in first.stdout and " 0 writes" not in first.stdout  # it finished what was cut short
    second = subprocess.run(
        [CLI, "lineage", "sync", "--model", name], capture_output=True, text=True, env=env, timeout=120
    )
    assert second.returncode == 0 and " 0 writes" in second.stdout, second.stdout + second.stderr
    shown = subprocess.run(
        [CLI, "lineage", "show", "--model", f"{name}/{v2}", "--format", "dot"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("digraph lineage")
    assert "DerivedFrom" in shown.stdout and "ContributedTo" in shown.stdout

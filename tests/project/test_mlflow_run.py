"""Every entry point through ``mlflow run . -e NAME --env-manager local`` as a subprocess, against
a real MLflow tracking server; runs, nested runs, versions, tags and metrics read back from it."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import mlflow
import optuna
import pytest

from tests.serving.conftest import BIN

ROOT = Path(__file__).resolve().parents[2]
SMALL = "scenario:truck-delay?weeks=0-1&rows=600"
NEW = "scenario:truck-delay?weeks=2&rows=600"
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def mlflow_run(
    tracking: str, entry: str, experiment: str, check: bool = True, **params: str
) -> subprocess.CompletedProcess:
    command = [
        str(BIN / "mlflow"),
        "run",
        str(ROOT),
        "-e",
        entry,
        "--env-manager",
        "local",
        "--experiment-name",
        experiment,
    ]
    for key, value in params.items():
        command += ["-P", f"{key}={value}"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("MLFLOW_EXPERIMENT_ID", None)  # mlflow.set_experiment() in this process exports it
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def in_process(main, **params: str) -> None:
    """An entry point's ``main`` in this process, with the parameters ``mlflow run -P`` would pass
    (each entry point is run through ``mlflow run`` by at least one test here; the others call its
    ``main`` and save the ~10 s of two interpreters per run)."""
    main([arg for key, value in params.items() for arg in (f"--{key.replace('_', '-')}", value)])
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@pytest.fixture
def experiment(tracking):
    return f"project-{uuid.uuid4().hex[:8]}"


def assert_baseline(run_id: str, features: list[str]) -> None:
    """The run logged the training features' baseline, in Model Monitor's documented formats."""
    from projects import baseline
    from tests.project.test_baseline import validator

    stats, constraints = baseline.load(run_id)
    validator("statistics").validate(stats)
    validator("constraints").validate(constraints)
    assert [f["name"] for f in stats["features"]] == features
    assert [f["name"] for f in constraints["features"]] == features


def features_of(model_uri: str) -> list[str]:
    return mlflow.models.get_model_info(model_uri).signature.inputs.input_names()


def runs_of(experiment: str) -> list:
    found = mlflow.get_experiment_by_name(experiment)
    return mlflow.MlflowClient().search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])


def test_train_logs_params_metrics_datasets_artifacts_and_registers(tracking, experiment):
    name = f"truck-{uuid.uuid4().hex[:6]}"
    mlflow_run(tracking, "train", experiment, data=SMALL, family="hgb", registered_model=name)
    (run,) = runs_of(experiment)
    assert run.info.status == "FINISHED"
    assert run.data.params["family"] == "hgb" and run.data.params["task"] == "binary"
    assert 0.5 < run.data.metrics["test_roc_auc"] <= 1.0 and run.data.metrics["train_seconds"] > 0
    contexts = sorted(i.tags[0].value for i in run.inputs.dataset_inputs)
    assert contexts == ["evaluation", "training"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "replay")}
    assert artifacts == {"replay/train_sample.parquet"}
    (version,) = mlflow.MlflowClient().search_model_versions(f"name='{name}'")
    assert version.run_id == run.info.run_id
    info = mlflow.models.get_model_info(f"models:/{name}/1")
    assert info.signature is not None and "distance_km" in info.signature.inputs.input_names()
    assert_baseline(run.info.run_id, info.signature.inputs.input_names())
    assert json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/baseline/statistics.json"))["dataset"] == {
        "item_count": 960
    }  # the training split of 1,200 rows


def test_main_runs_train_on_its_defaults(tracking, experiment):
    mlflow_run(tracking, "main", experiment)
    (run,) = runs_of(experiment)
    assert run.data.tags["project.data"] == "scenario:truck-delay?weeks=0-3" and run.data.params["family"] == "xgboost"
    assert run.data.params["rows"] == "8000"


def test_tune_makes_a_nested_run_per_trial_prunes_and_registers_the_best(tracking, experiment, tmp_path):
    name = f"tuned-{uuid.uuid4().hex[:6]}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    mlflow_run(
        tracking,
        "tune",
        experiment,
        data=SMALL,
        n_trials="10",
        storage=storage,
        registered_model=name,
        report_every="5",
    )
    runs = runs_of(experiment)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 10
    pruned = [r for r in trials if r.data.tags["optuna.state"] == "PRUNED"]
    assert pruned and all(r.info.status == "KILLED" for r in pruned)
    assert parent.data.metrics["trials_pruned"] == len(pruned)
    complete = [r for r in trials if r.data.tags["optuna.state"] == "COMPLETE"]
    assert max(r.data.metrics["val_score"] for r in complete) == pytest.approx(parent.data.metrics["best_val_score"])
    (version,) = mlflow.MlflowClient().search_model_versions(f"name='{name}'")
    assert version.run_id == parent.info.run_id
    study = optuna.load_study(study_name="truck-delay", storage=storage)
    assert len(study.trials) == 10
    assert_baseline(parent.info.run_id, features_of(f"models:/{name}/1"))


def test_two_invocations_share_one_study_on_postgresql(tracking, experiment):
    study_name = f"shared-{uuid.uuid4().hex[:8]}"
    # Both `mlflow run`s would create a missing experiment at once, and one would lose that race
    # (RESOURCE_ALREADY_EXISTS): parallel workers share an experiment that exists already.
    mlflow.create_experiment(experiment)
    command = [
        str(BIN / "mlflow"),
        "run",
        str(ROOT),
        "-e",
        "tune",
        "--env-manager",
        "local",
        "--experiment-name",
        experiment,
        "-P",
        f"data={SMALL}",
        "-P",
        "n_trials=4",
        "-P",
        f"study_name={study_name}",
        "-P",
        f"storage={POSTGRES}",
        "-P",
        "family=sgd",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{BIN}:{os.environ['PATH']}"}
    workers = [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    try:
        assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-2000:] for o in outputs)
        study = optuna.load_study(study_name=study_name, storage=POSTGRES)
        assert len(study.trials) == 8
        assert len({t.number for t in study.trials}) == 8
    finally:
        optuna.delete_study(study_name=study_name, storage=POSTGRES)


def test_train_on_a_dataset_that_knows_its_label(tracking, experiment):
    """No ``target``: sklearn:NAME's own label column (``target``), not the scenario's."""
    from projects import train

    mlflow.set_experiment(experiment)
    in_process(train.main, data="sklearn:breast_cancer", family="sgd")
    (run,) = runs_of(experiment)
    assert run.data.tags["project.target"] == "target" and run.data.params["task"] == "binary"
    assert run.data.metrics["test_roc_auc"] > 0.9


@pytest.fixture
def base_model(tracking, experiment):
    """Version 1 of a new registered model, trained in-process (the train entry point itself is
    tested through ``mlflow run`` above)."""
    from projects import train

    name = f"truck-{uuid.uuid4().hex[:6]}"
    mlflow.set_experiment(experiment)
    train.main(["--data", SMALL, "--registered-model", name, "--params", '{"n_estimators": 60}'])
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return name


@pytest.mark.parametrize("strategy", ["incremental", "rehearsal", "full"])
def test_retrain_records_its_parent_and_measures_forgetting(tracking, experiment, base_model, strategy):
    from projects import retrain

    client = mlflow.MlflowClient()
    client.set_registered_model_alias(base_model, "champion", "1")
    client.transition_model_version_stage(base_model, "1", "Staging")
    # Every form of base_model: an alias, a stage, a version number; the entry point through
    # `mlflow run` once, the other strategies in this process.
    base = {"incremental": "@champion", "rehearsal": "/Staging", "full": "/1"}[strategy]
    params = {"base_model": f"models:/{base_model}{base}", "new_data": NEW, "strategy": strategy, "n_more": "30"}
    if strategy == "incremental":
        mlflow_run(tracking, "retrain", experiment, **params)
    else:
        in_process(retrain.main, **params)
    run = runs_of(experiment)[-1]
    assert run.data.tags["parent.version"] == "1" and run.data.tags["parent.registered_model"] == base_model
    metrics = run.data.metrics
    assert metrics["forgetting"] == pytest.approx(metrics["parent_old_score"] - metrics["old_score"])
    assert {"old_score", "new_score", "train_seconds"} <= set(metrics)
    names = {i.dataset.name for i in run.inputs.dataset_inputs}
    assert {"parent-holdout", "new-train"} <= names
    version = client.get_model_version(base_model, "2")
    assert version.run_id == run.info.run_id
    assert_baseline(run.info.run_id, features_of(f"models:/{base_model}/2"))


def test_retrain_refuses_an_unseen_category_naming_the_column_unless_told(tracking, experiment, base_model):
    from projects import retrain  # in this process: projects/cli.py turns the refusal into stderr and exit 1

    mountain = "scenario:truck-delay?weeks=5&rows=600&new_route_week=5"
    params = {"base_model": f"models:/{base_model}/1", "new_data": mountain, "strategy": "incremental"}
    with pytest.raises(SystemExit) as refused:
        in_process(retrain.main, **params)
    assert str(refused.value).startswith("python -m projects.retrain: error: column ")
    assert "column 'route_type': values ['mountain'] were not in the parent's training data" in str(refused.value)
    assert [v.version for v in mlflow.MlflowClient().search_model_versions(f"name='{base_model}'")] == ["1"]
    in_process(retrain.main, **params, on_unseen_category="ignore", n_more="10")
    assert mlflow.MlflowClient().get_model_version(base_model, "2").tags == {}


def test_evaluate_writes_the_verdict_and_promotes(tracking, experiment, base_model):
    client = mlflow.MlflowClient()
    mlflow_run(
        tracking,
        "evaluate",
        experiment,
        challenger=f"models:/{base_model}/1",
        champion=f"models:/{base_model}@champion",
        promote_to="@champion",
        min_score="0.5",
    )
    assert client.get_registered_model(base_model).aliases == {"champion": "1"}
    tags = client.get_model_version(base_model, "1").tags
    assert tags["evaluation.verdict"] == "pass" and tags["evaluation.champion_version"] == ""
    from projects import evaluate, retrain  # the rest in this process: `mlflow run` proved the wiring above

    in_process(
        retrain.main, base_model=f"models:/{base_model}@champion", new_data=NEW, strategy="incremental", n_more="5"
    )
    in_process(
        evaluate.main,
        challenger=f"models:/{base_model}/2",
        champion=f"models:/{base_model}@champion",
        min_score="0.99",
        promote_to="Production",
    )
    tags = client.get_model_version(base_model, "2").tags
    assert tags["evaluation.verdict"] == "fail" and "below min_score" in tags["evaluation.reason"]
    assert tags["evaluation.champion_version"] == "1" and float(tags["evaluation.champion_score"]) > 0.5
    assert client.get_model_version(base_model, "2").current_stage == "None"  # a failing challenger stays put
    in_process(
        evaluate.main,
        challenger=f"models:/{base_model}/2",
        champion=f"models:/{base_model}@champion",
        max_regression="1.0",
        promote_to="Production",
    )
    assert client.get_model_version(base_model, "2").current_stage == "Production"

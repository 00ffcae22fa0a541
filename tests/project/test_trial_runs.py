"""A tuning trial's run is the same whichever writer makes it, and the REST writer signs in as
MLflow's client does (a real ``mlflow server``, with and without MLflow's basic-auth app)."""

from __future__ import annotations

import time
import uuid

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from projects import trial_runs


def written(writer, experiment_id: str) -> mlflow.entities.Run:
    started = int(time.time() * 1000) - 1500
    run_id = writer.write(
        experiment_id,
        "trial-7",
        started,
        started + 1234,
        "KILLED",
        {"mlflow.parentRunId": "parent-run", "optuna.state": "PRUNED"},
        {"max_depth": 4, "learning_rate": 0.05},
        {"val_score": 0.875},
    )
    return mlflow.MlflowClient().get_run(run_id)


def test_the_rest_writer_makes_the_run_mlflows_client_makes(tracking, tmp_path):
    assert isinstance(trial_runs.for_tracking_uri(tracking), trial_runs.RestTrialRuns)
    assert isinstance(trial_runs.for_tracking_uri(f"sqlite:///{tmp_path / 'local.db'}"), trial_runs.ClientTrialRuns)
    experiment = mlflow.MlflowClient().create_experiment(f"trial-runs-{uuid.uuid4().hex[:6]}")
    rest = written(trial_runs.RestTrialRuns(tracking), experiment)
    client = written(trial_runs.ClientTrialRuns(tracking), experiment)

    def shape(run):
        info = run.info
        return (
            info.run_name,
            info.status,
            info.end_time - info.start_time,
            info.experiment_id,
            run.data.tags,
            run.data.params,
            run.data.metrics,
            [
                (m.value, m.timestamp - info.start_time, m.step)
                for m in mlflow.MlflowClient().get_metric_history(info.run_id, "val_score")
            ],
        )

    assert shape(rest) == shape(client)
    assert shape(rest)[:2] == ("trial-7", "KILLED") and rest.data.params == {"max_depth": "4", "learning_rate": "0.05"}
    assert rest.data.tags["optuna.state"] == "PRUNED" and rest.data.metrics == {"val_score": 0.875}


def test_the_rest_writer_signs_in_with_mlflows_credentials_and_names_a_refusal(tmp_path, monkeypatch):
    from tests.serving.conftest import BIN, Server, basic_auth_env, free_port

    password = "Tr1al-runs-password"
    port = free_port()
    server = Server(
        [
            str(BIN / "mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        port,
        {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **basic_auth_env(tmp_path, password)},
    )
    try:
        server.wait_ready("/health")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        mlflow.set_tracking_uri(server.url)
        experiment = mlflow.MlflowClient().create_experiment("secured-tuning")
        assert written(trial_runs.RestTrialRuns(server.url), experiment).info.status == "KILLED"

        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
        with pytest.raises(MlflowException) as refused:
            trial_runs.RestTrialRuns(server.url).write(experiment, "trial-8", 1, 2, "FINISHED", {}, {}, {})
        assert f"POST {server.url}/api/2.0/mlflow/runs/create answered 401" in str(refused.value)
    finally:
        mlflow.set_tracking_uri(None)
        server.stop()

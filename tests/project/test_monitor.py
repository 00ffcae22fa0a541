"""``monitor``: a version trained on weeks 0-3 of the scenario, then captured windows (Parquet and
CSV files) of undrifted and drifted weeks, against a real MLflow tracking server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import mlflow
import pytest

from projects import capture, monitor, scenario, train
from tests.project.test_mlflow_run import mlflow_run
from tests.serving.conftest import SKLEARN, pinned

TRAINING = "scenario:truck-delay?weeks=0-3&rows=1000&drift_from=4"


@pytest.fixture
def version(tracking):
    """Version 1 of a new registered model, trained in-process (sgd: quick)."""
    name = f"monitored-{uuid.uuid4().hex[:6]}"
    mlflow.set_experiment(f"monitor-{uuid.uuid4().hex[:6]}")
    train.main(["--data", TRAINING, "--family", "sgd", "--registered-model", name])
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return name


def captured(tmp_path, index: int, seed: int = 21, kind: str = "parquet", **options) -> str:
    """A window of captured rows, as a file: the features and (ignored by monitor) the label."""
    rows = scenario.week(index, 8, rows=1500, seed=seed, drift_from=4, **options)
    path = tmp_path / f"week_{index}.{kind}"
    rows.to_parquet(path, index=False) if kind == "parquet" else rows.to_csv(path, index=False)
    return str(path)


def test_undrifted_and_drifted_windows(version, tmp_path):
    quiet = monitor.run(
        monitor.parser().parse_args(["--model", f"models:/{version}/1", "--data", captured(tmp_path, 2)])
    )
    assert quiet.verdict == "no drift"
    loud = monitor.run(
        monitor.parser().parse_args(["--model", f"models:/{version}/1", "--data", captured(tmp_path, 7, kind="csv")])
    )
    assert set(loud.drifted) == set(scenario.DRIFTING)

    client = mlflow.MlflowClient()
    tags = client.get_model_version(version, "1").tags
    assert tags["monitor.verdict"] == "drift" and set(tags["monitor.drifted"].split(",")) == set(scenario.DRIFTING)
    run = client.get_run(tags["monitor.run_id"])
    assert run.data.tags["monitor.verdict"] == "drift" and run.data.tags["monitor.model_version"] == "1"
    assert run.data.tags["monitor.baseline_run_id"] == client.get_model_version(version, "1").run_id
    metrics = run.data.metrics
    assert metrics["rows"] == 1500 and metrics["drifted_features"] == 4
    assert metrics["drift.distance_km.drifted"] == 1 and metrics["drift.weather.drifted"] == 0
    assert metrics["drift.distance_km.ks_statistic"] > 0.1 and "drift.distance_km.wasserstein_std" in metrics
    assert {"drift.route_type.chi2_pvalue", "drift.route_type.jensen_shannon", "drift.route_type.linf"} <= set(metrics)
    report = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/drift/report.json")
    assert report["verdict"] == "drift" and report["thresholds"] == {"numeric": 0.1, "categorical": 0.1}


def test_a_version_without_a_baseline_is_named(tracking, tmp_path):
    """A version registered before baselines were logged: one line saying what to do."""
    from sklearn.dummy import DummyClassifier

    name = f"old-{uuid.uuid4().hex[:6]}"
    with mlflow.start_run() as old:
        mlflow.sklearn.log_model(
            DummyClassifier().fit([[0], [1]], [0, 1]),
            name="model",
            registered_model_name=name,
            pip_requirements=pinned(*SKLEARN),
        )
    done = subprocess.run(
        [sys.executable, "-m", "projects.monitor", "--model", f"models:/{name}/1", "--data", captured(tmp_path, 1)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking},
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"python -m projects.monitor: error: run {old.info.run_id} has no baseline/statistics.json and "
        "constraints.json: it was trained before baselines were logged, or not by this project. Retrain it "
        "(mlflow run . -e retrain) or train a new version."
    )


def test_monitor_through_mlflow_run(version, tmp_path, tracking):
    experiment = f"monitor-cli-{uuid.uuid4().hex[:6]}"
    mlflow_run(
        tracking,
        "monitor",
        experiment,
        model=f"models:/{version}/1",
        data=captured(tmp_path, 6, seed=22),
        threshold="0.2",
    )
    (run,) = mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name(experiment).experiment_id])
    assert run.data.params["threshold.numeric"] == "0.2"
    assert run.data.tags["monitor.verdict"] == "drift"
    assert set(run.data.tags["monitor.drifted"].split(",")) <= set(scenario.DRIFTING)


def send(aws, endpoint: str, rows, requests: int = 3) -> None:
    """``rows`` (their features) to the endpoint, split over requests in two of MLflow's formats."""
    import json

    features = rows.drop(columns=[scenario.TARGET])
    size = -(-len(features) // requests)
    for number in range(requests):
        chunk = features.iloc[number * size : (number + 1) * size]
        if number % 2:
            body, content_type = chunk.to_csv(index=False).encode(), "text/csv"
        else:
            body, content_type = (
                json.dumps({"dataframe_split": chunk.to_dict(orient="split")}, default=str),
                "application/json",
            )
        aws("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, ContentType=content_type, Body=body)


def next_second() -> datetime:
    """Wait for the next whole second (capture records' inferenceTime has whole seconds), and return it."""
    now = datetime.now(timezone.utc)
    boundary = now.replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((boundary - now).total_seconds() + 0.01)
    return boundary


def test_monitor_reads_an_endpoints_capture_window_and_publishes_model_monitors_metrics(version, aws, tracking):
    from mlflow_plugins.deploy import make_target
    from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

    aws("s3").create_bucket(Bucket="capture")
    endpoint = f"mon-{uuid.uuid4().hex[:6]}"
    target = make_target("sagemaker", _clients())
    capture_config = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://capture/traffic",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    target.create(
        endpoint,
        f"models:/{version}/1",
        target.parse({"execution_role_arn": EXECUTION_ROLE_ARN, "data_capture_config": capture_config}),
    )
    start = next_second()
    send(aws, endpoint, scenario.week(1, 8, rows=600, seed=31, drift_from=4))
    middle = next_second()
    send(aws, endpoint, scenario.week(7, 8, rows=600, seed=32, drift_from=4))
    end = next_second()

    def window(a: datetime, b: datetime) -> str:
        return f"{a:%Y-%m-%dT%H:%M:%SZ}/{b:%Y-%m-%dT%H:%M:%SZ}"

    quiet = monitor.run(monitor.parser().parse_args(["--endpoint", endpoint, "--window", window(start, middle)]))
    loud = monitor.run(monitor.parser().parse_args(["--endpoint", endpoint, "--window", window(middle, end)]))
    before = monitor.run(
        monitor.parser().parse_args(["--endpoint", endpoint, "--window", window(start - timedelta(hours=1), start)])
    )
    assert before.rows == 0  # a quiet window is a verdict of its own, not an error
    quiet_runs = mlflow.search_runs(
        filter_string="tags.`monitor.verdict` = 'no traffic'", search_all_experiments=True, output_format="list"
    )
    assert any(r.data.params["data"].endswith(window(start - timedelta(hours=1), start)) for r in quiet_runs)
    assert (quiet.verdict, quiet.rows) == ("no drift", 600)
    assert (loud.verdict, loud.rows) == ("drift", 600)
    assert set(loud.drifted) <= set(scenario.DRIFTING) and loud.drifted

    client = mlflow.MlflowClient()
    tags = client.get_model_version(version, "1").tags  # the endpoint's own version, found from its tags
    assert tags["monitor.verdict"] == "drift"
    run = client.get_run(tags["monitor.run_id"])
    assert run.data.params["data"] == f"s3://capture/traffic/{endpoint} {window(middle, end)}"
    picture = client.download_artifacts(run.info.run_id, "drift/report.png")
    with open(picture, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(client.download_artifacts(run.info.run_id, "drift/report.html")) as handle:
        page = handle.read()
    assert "report.png" in page and all(feature in page for feature in loud.drifted)

    cloudwatch = aws("cloudwatch")
    listed = cloudwatch.list_metrics(Namespace=monitor.NAMESPACE)["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert {f"feature_baseline_drift_{f.feature}" for f in loud.features} <= names
    drifted = loud.drifted[0]
    stats = cloudwatch.get_metric_statistics(
        Namespace=monitor.NAMESPACE,
        MetricName=f"feature_baseline_drift_{drifted}",
        Dimensions=[
            {"Name": "Endpoint", "Value": endpoint},
            {"Name": "MonitoringSchedule", "Value": f"mlflow-monitor-{endpoint}"},
        ],
        StartTime=start - timedelta(minutes=5),
        EndTime=datetime.now(timezone.utc) + timedelta(minutes=5),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    feature = next(f for f in loud.features if f.feature == drifted)
    expected = feature.metrics["ks_statistic" if feature.kind == "numeric" else "linf"]
    assert max(d["Maximum"] for d in stats) == pytest.approx(expected)


def test_monitor_takes_exactly_one_source_of_rows(tracking):
    with pytest.raises(capture.CaptureError, match="exactly one of them"):
        monitor.run(monitor.parser().parse_args(["--model", "models:/x/1"]))
    with pytest.raises(capture.CaptureError, match="is not a window"):
        capture.window("yesterday")


def _clients():
    from mlflow_plugins.aws import make_clients

    return make_clients()

"""The drift loop a policy's ``monitor`` section runs, end to end: a real ``mlflow server`` with
the hooks app, the controller as a process, the sandbox. Version 1 (trained on undrifted weeks)
is deployed with data capture, drifted traffic arrives, the loop's monitor run sees the drift,
retrains from version 1, evaluates version 2 against it, promotes it, and the controller deploys
it; each step is a run tagged with the one before, and the audit log has them all."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import mlflow
import pytest

from projects import scenario, train
from registry_hooks import policy as policy_file
from tests.hooks.conftest import eventually, hooks_cli, policy_text
from tests.hooks.test_controller import status_is

ROOT = Path(__file__).resolve().parents[2]
TRAINING = "scenario:truck-delay?weeks=0-3&rows=1000&drift_from=4"
CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": "s3://capture/traffic",
    "CaptureOptions": [{"CaptureMode": "Input"}],
}


def loop_policy(deployment: str, model: str, experiment: str, every: str = "8s") -> str:
    return policy_text(
        deployment,
        model,
        extra=(
            f"      data_capture_config: {json.dumps(CAPTURE)}\n"
            "    monitor:\n"
            f"      every: {every}\n"
            "      window: 1h\n"
            "      on_drift: retrain\n"
            f"      project: {ROOT}\n"
            f"      experiment: {experiment}\n"
            "      retrain: {new_data: 'scenario:truck-delay?weeks=4-7&rows=800&drift_from=4', strategy: rehearsal}\n"
            "      evaluate: {data: 'scenario:truck-delay?weeks=7&rows=800&drift_from=4&seed=9', max_regression: 0.02}\n"
        ),
    )


def test_drift_in_an_endpoints_traffic_retrains_evaluates_promotes_and_deploys(registry, controllers, aws, monkeypatch):
    model = f"loop{uuid.uuid4().hex[:6]}"
    deployment = f"{model}-prod"
    experiment = f"drift-loop-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.url)
    mlflow.set_tracking_uri(registry.url)
    mlflow.set_experiment(f"training-{uuid.uuid4().hex[:6]}")
    train.main(["--data", TRAINING, "--family", "sgd", "--registered-model", model])  # version 1, with its baseline
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    aws("s3").create_bucket(Bucket="capture")

    controller = controllers(loop_policy(deployment, model, experiment), registry)
    registry.transition(model, "1", "Production")
    eventually(
        status_is(registry, model, "1", deployment, "IN_SERVICE"), what="v1 IN_SERVICE", explain=controller.output
    )
    drifted = scenario.week(7, 8, rows=600, seed=33, drift_from=4).drop(columns=[scenario.TARGET])
    for start in range(0, len(drifted), 200):
        body = json.dumps({"dataframe_split": drifted.iloc[start : start + 200].to_dict(orient="split")})
        aws("sagemaker-runtime").invoke_endpoint(EndpointName=deployment, ContentType="application/json", Body=body)

    def v2_in_service() -> bool:
        if not registry.client().search_model_versions(f"name = '{model}' and version_number = 2"):
            return False  # not retrained yet
        return status_is(registry, model, "2", deployment, "IN_SERVICE")()

    eventually(
        v2_in_service,
        timeout=240,
        what="v2 retrained, promoted and IN_SERVICE",
        explain=controller.output,
    )
    client = registry.client()
    assert client.get_model_version(model, "2").current_stage == "Production"
    assert registry.tags(model, "1", deployment)["status"] == "RETIRED"

    runs = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id], "tags.`loop.deployment` = '" + deployment + "'"
    )
    by_step = {}
    for run in runs:
        by_step.setdefault(run.data.tags["loop.step"], []).append(run)
    monitors = [r for r in by_step["monitor"] if r.data.tags.get("monitor.verdict") == "drift"]
    assert monitors and by_step["retrain"] and by_step["evaluate"]
    (retrain,), (evaluate,) = by_step["retrain"], by_step["evaluate"]
    assert retrain.data.tags["loop.parent_run_id"] in {r.info.run_id for r in monitors}
    assert evaluate.data.tags["loop.parent_run_id"] == retrain.info.run_id
    assert client.get_model_version(model, "2").run_id == retrain.info.run_id  # v2 is the retrain run's model
    assert evaluate.data.tags["evaluation.verdict"] == "pass"
    assert monitors[0].data.params["data"].startswith(f"s3://capture/traffic/{deployment} ")

    audit = [
        json.loads(line)
        for line in hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
    ]
    steps = [(a["action"], a["result"]) for a in audit if a["action"].startswith("loop-")]
    assert ("loop-monitor", "drift") in steps and ("loop-retrain", "succeeded") in steps
    assert ("loop-evaluate", "promoted") in steps


@pytest.mark.parametrize(
    ("monitor", "expected"),
    [
        ("{every: soon}", "every='soon' is not a period"),
        ("{every: 1h, on_drift: panic}", "on_drift='panic' is not an action"),
        ("{every: 1h, on_drift: retrain, evaluate: {data: x}}", "needs retrain.new_data"),
        ("{every: 1h, on_drift: retrain, retrain: {new_data: x, base_model: y}, evaluate: {data: x}}", "base_model"),
        ("{every: 1h, project: /nowhere}", "has no MLproject file"),
        ("{every: 1h, cadence: 2}", "unknown key(s) ['cadence']"),
        ("{every: 3600}", "every=3600 is not a period"),  # a unit always, as monitor's window takes it
        ("{every: 1h, window: 0s}", "window='0s' is not a window monitor reads"),
        (
            f"{{every: 1h, project: {ROOT}, on_drift: retrain, retrain: {{new_data: x, stratgy: full}}, "
            "evaluate: {data: y}}",
            "Did you mean 'strategy'?",
        ),
        (f"{{every: 1h, project: {ROOT}}}", "does not capture them (absent)"),  # no data_capture_config
    ],
)
def test_a_bad_monitor_section_names_the_file_line_and_key(monitor, expected, tmp_path):
    capture = "" if "(absent)" in expected else f"      data_capture_config: {json.dumps(CAPTURE)}\n"
    text = policy_text("d1", "m1", extra=f"{capture}    monitor: {monitor}\n")
    with pytest.raises(policy_file.PolicyError, match="policy.yaml:") as caught:
        policy_file.parse(text, str(tmp_path / "policy.yaml"))
    assert expected in str(caught.value) and "Allowed" in str(caught.value)


def test_a_deployment_name_may_not_hold_the_lease_rows_mark(tmp_path):
    text = policy_text("d1#monitor", "m1").replace("  d1#monitor:", "  d1#monitor:\n    endpoint: d1")
    with pytest.raises(policy_file.PolicyError, match="holds '#'"):
        policy_file.parse(text, str(tmp_path / "policy.yaml"))

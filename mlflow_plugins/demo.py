"""The main job, end to end on embedded defaults: everything runs on this machine, offline.

It starts where data scientists do, in the MLflow project (``mlflow run``, as subprocesses, into a
local tracking store): ``train`` on the first four weeks of the truck-delay scenario registers
version 1, ``retrain`` (rehearsal) on week 5 registers version 2, and ``evaluate`` judges version 2
against version 1. Then it deploys through the suite's SageMaker client into the sandbox: create
on version 1 (the variant runs the serving runtime on the model), a prediction, a canary update to
version 2 that completes, a canary update whose alarm trips during baking and rolls back (the
update fails, naming the alarm), the endpoint's lineage context, and delete.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_plugins.aws import AwsClients
from mlflow_plugins.errors import MissingSetting, OpsError
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

ALARM = "demo-endpoint-5xx"
WAIT = {"Delay": 0.1, "MaxAttempts": 3000}
MODEL = "truck-delay"
PROJECT = Path(__file__).resolve().parent.parent  # the repository: MLproject, projects/


def mlflow_run(entry: str, tracking_uri: str, say: Callable[[str], None], **params: str) -> str:
    """``mlflow run <repo> -e entry --env-manager local``; returns its last line of output."""
    if not (PROJECT / "MLproject").exists():
        raise MissingSetting(name="MLproject", allowed="a clone of the mlflow-sagemaker-ops repository",
                             fix="Run the demo from the repository (pip install -e .), where MLproject is.")
    command = [str(Path(sys.executable).parent / "mlflow"), "run", str(PROJECT), "-e", entry, "--env-manager", "local",
               "--experiment-name", "demo"] + [arg for k, v in params.items() for arg in ("-P", f"{k}={v}")]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=PROJECT)
    if done.returncode != 0:
        raise RuntimeError(f"mlflow run -e {entry} failed:\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith(f"{entry}:") or line.startswith(f"{entry} (")]
    say(lines[-1] if lines else f"{entry}: done")
    return done.stdout


def rows() -> dict[str, Any]:
    """Two deliveries of the scenario's week 5, as MLflow's dataframe_split JSON."""
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))  # the project's code, as `mlflow run` sees it
    from projects import scenario

    frame = scenario.week(4, 8, rows=2, seed=99).drop(columns=[scenario.TARGET])
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


def predict(clients: AwsClients) -> tuple[str, list[Any]]:
    reply = clients("sagemaker-runtime").invoke_endpoint(
        EndpointName="demo", Body=json.dumps(rows()), ContentType="application/json")
    return reply["InvokedProductionVariant"], json.loads(reply["Body"].read())["predictions"]


def run(clients: AwsClients, say: Callable[[str], None]) -> dict[str, Any]:
    """Deploys through the suite's ``sagemaker-ops`` client (as ``mlflow deployments`` does)."""
    from mlflow_plugins.deploy._sagemaker import SageMakerDeployer

    sm, cloudwatch = clients("sagemaker"), clients("cloudwatch")
    deployer = SageMakerDeployer(clients, say=lambda line: None)
    started = time.monotonic()
    base = {"execution_role_arn": EXECUTION_ROLE_ARN, "instance_count": 4, "alarms": [ALARM], "bake_seconds": 300,
            "termination_wait_seconds": 60}
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    with tempfile.TemporaryDirectory() as scratch:
        tracking = f"sqlite:///{Path(scratch) / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = tracking  # the deployer resolves models:/ URIs here
        import mlflow

        mlflow.MlflowClient(tracking).create_experiment("demo", artifact_location=str(Path(scratch) / "artifacts"))
        mlflow_run("train", tracking, say, data="scenario:truck-delay?weeks=0-3", registered_model=MODEL)
        mlflow_run("retrain", tracking, say, base_model=f"models:/{MODEL}/1", new_data="scenario:truck-delay?weeks=4",
                   strategy="rehearsal")
        mlflow_run("evaluate", tracking, say, challenger=f"models:/{MODEL}/2", champion=f"models:/{MODEL}/1",
                   max_regression="0.02")
        versions = {v: f"models:/{MODEL}/{v}" for v in (1, 2)}
        deployment = deployer.create("demo", versions[1], base)
        say(f"create: endpoint demo is {deployment['status']} on v1 ({deployment['endpoint_config']}, "
            f"{deployment['registered_model']} version {deployment['model_version']})")
        variant, predictions = predict(clients)
        say(f"predict: variant {variant} of the serving runtime answered {predictions} (1 = late)")

        deployment = deployer.update("demo", versions[2], {**base, "strategy": "canary", "canary_size": 25})
        say(f"canary update to v2: {deployment['status']}; predict: {predict(clients)[1]}")

        trip = threading.Thread(target=_trip_alarm_while_baking, args=(sm, cloudwatch))
        trip.start()
        try:
            deployer.update("demo", versions[1], {**base, "strategy": "canary", "canary_size": 25, "bake_seconds": 900})
        except OpsError as error:
            say(f"canary update to v1: failed as it should: {error}")
        trip.join()
    described = sm.describe_endpoint(EndpointName="demo")
    say(f"rollback: {described['EndpointStatus']}, still serving version {deployer.get('demo')['model_version']}")

    contexts = sm.list_contexts(SourceUri=described["EndpointArn"])["ContextSummaries"]
    say(f"lineage: endpoint context {contexts[0]['ContextName']} ({contexts[0]['ContextType']})")
    deployer.delete("demo")
    say(f"delete: endpoint demo and its models are gone after {time.monotonic() - started:.1f} s in all")
    return described


def _trip_alarm_while_baking(sm: Any, cloudwatch: Any) -> None:
    baking_waiter(sm).wait(EndpointName="demo", WaiterConfig=WAIT)
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="demo: 5xx spike")


def baking_waiter(sm: Any) -> Any:
    """A botocore waiter (data, not a loop) for the new fleet reaching its baking period."""
    import botocore.waiter

    model = botocore.waiter.WaiterModel({"version": 2, "waiters": {"Baking": {
        "operation": "DescribeEndpoint", "delay": 1, "maxAttempts": 600,
        "acceptors": [
            {"matcher": "pathAny", "state": "success", "expected": "Baking",
             "argument": "PendingDeploymentSummary.ProductionVariants[].VariantStatus[].Status"},
        ]}}})
    return botocore.waiter.create_waiter_with_client("Baking", model, sm)

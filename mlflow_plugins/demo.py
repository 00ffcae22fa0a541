"""The main job, end to end on embedded defaults: everything runs on this machine, offline.

It starts where data scientists do, in the MLflow project: ``mlflow run -e train`` (a subprocess,
into a local tracking store) on the first four weeks of the truck-delay scenario registers version
1. Then the Model Registry deploys: ``mlflow server --app-name registry-hooks`` and the
registry-hooks controller run beside the sandbox, and each step is a stage transition through the
REST path the MLflow UI uses. Version 1 to Production creates the endpoint (its variant runs the
serving runtime on the model, and captures its requests), and a prediction. Then weeks 4 to 7
arrive as traffic, and the policy's drift loop closes: its ``monitor`` run finds drift in the
captured requests, ``retrain`` (rehearsal) registers version 2, ``evaluate`` passes it against
version 1 and promotes it, and the controller rolls it out as a canary. Version 1 back to
Production (archiving version 2) rolls out and rolls back when an alarm trips during baking
(ROLLED_BACK on the version), the endpoint's lineage context is shown, and version 1 to Archived
deletes the endpoint (the policy's leave rule), as Production is empty then. The loop's runs, the
status tags and the audit log are printed on the way.
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
from mlflow_plugins.errors import MissingSetting
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

ALARM = "demo-endpoint-5xx"
WAIT = {"Delay": 0.1, "MaxAttempts": 3000}
MODEL = "truck-delay"
PROJECT = Path(__file__).resolve().parent.parent  # the repository: MLproject, projects/


def mlflow_run(entry: str, tracking_uri: str, say: Callable[[str], None], **params: str) -> str:
    """``mlflow run <repo> -e entry --env-manager local``; returns its last line of output."""
    if not (PROJECT / "MLproject").exists():
        raise MissingSetting(
            name="MLproject",
            allowed="a clone of the mlflow-sagemaker-ops repository",
            fix="Run the demo from the repository (pip install -e .), where MLproject is.",
        )
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "run",
        str(PROJECT),
        "-e",
        entry,
        "--env-manager",
        "local",
        "--experiment-name",
        "demo",
    ] + [arg for k, v in params.items() for arg in ("-P", f"{k}={v}")]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
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
        EndpointName="demo", Body=json.dumps(rows()), ContentType="application/json"
    )
    return reply["InvokedProductionVariant"], json.loads(reply["Body"].read())["predictions"]


def run(clients: AwsClients, say: Callable[[str], None]) -> dict[str, Any]:
    """Promotes by stage transitions through the UI's REST path; the registry-hooks controller
    deploys with the suite's ``sagemaker`` client logic and writes the status back as tags."""
    from mlflow_plugins import _demo_hooks as hooks

    sm, cloudwatch = clients("sagemaker"), clients("cloudwatch")
    started = time.monotonic()
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    with tempfile.TemporaryDirectory() as scratch:
        tracking = f"sqlite:///{Path(scratch) / 'mlflow.db'}"
        import mlflow

        mlflow.MlflowClient(tracking).create_experiment("demo", artifact_location=str(Path(scratch) / "artifacts"))
        mlflow_run("train", tracking, say, data="scenario:truck-delay?weeks=0-3", registered_model=MODEL)
        clients("s3").create_bucket(Bucket=hooks.CAPTURE[len("s3://") :].split("/")[0])
        with hooks.Running(Path(scratch), tracking, MODEL, ALARM, EXECUTION_ROLE_ARN, say, PROJECT) as registry:
            registry.promote("1", "Production")
            tags = registry.await_status("1", ("IN_SERVICE",))
            say(
                f"deployed: endpoint demo is {sm.describe_endpoint(EndpointName='demo')['EndpointStatus']} on version 1; "
                f"version 1 tags: status {tags['status']}, {tags['arn']}"
            )
            variant, predictions = predict(clients)
            say(f"predict: variant {variant} of the serving runtime answered {predictions} (1 = late)")

            sent = send_drifted_traffic(clients)
            say(f"traffic: {sent} deliveries of weeks 4-7 (the routes drift from week 4) sent to the endpoint")
            tags = registry.await_status("2", ("IN_SERVICE",))  # the drift loop retrains, evaluates, promotes
            for line in loop_runs(registry.client, MODEL):
                say(line)
            one, two = (registry.client.get_model_version(MODEL, v).tags for v in ("1", "2"))
            say(
                f"version tags: v1 monitor.verdict {one.get('monitor.verdict')} ({one.get('monitor.drifted')}); "
                f"v2 evaluation.verdict {two.get('evaluation.verdict')} ({two.get('evaluation.reason')})"
            )
            say(
                f"canary to version 2: version 2 {tags['status']}, version 1 {registry.status('1')['status']}; "
                f"predict: {predict(clients)[1]}"
            )

            trip = threading.Thread(target=_trip_alarm_while_baking, args=(sm, cloudwatch))
            trip.start()
            registry.promote("1", "Production")
            tags = registry.await_status("1", ("ROLLED_BACK", "IN_SERVICE", "FAILED"))
            trip.join()
            say(f"canary back to version 1: {tags['status']}: {tags['message']}")
            described = sm.describe_endpoint(EndpointName="demo")
            served = registry.client.get_registered_model(MODEL).tags.get("deploy.demo.version")
            say(f"rollback: {described['EndpointStatus']}, still serving version {served}")
            contexts = sm.list_contexts(SourceUri=described["EndpointArn"])["ContextSummaries"]
            say(f"lineage: endpoint context {contexts[0]['ContextName']} ({contexts[0]['ContextType']})")

            registry.promote("1", "Archived")  # Production is empty now (v2 was archived): the leave rule deletes
            tags = registry.await_status("2", ("DELETED",))
            say(
                f"leave rule: version 2 {tags['status']}: {tags['message']}; endpoints left: {len(sm.list_endpoints()['Endpoints'])}"
            )
            for line in registry.audit():
                say(f"audit: {line}")
    say(f"done after {time.monotonic() - started:.1f} s in all")
    return described


def send_drifted_traffic(clients: AwsClients) -> int:
    """Weeks 4 to 7 of the scenario, 200 deliveries a request, as the endpoint's callers would."""
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    from projects import scenario

    runtime, sent = clients("sagemaker-runtime"), 0
    for week in range(4, 8):
        frame = scenario.week(week, 8, rows=200, seed=50 + week).drop(columns=[scenario.TARGET])
        body = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
        runtime.invoke_endpoint(EndpointName="demo", Body=json.dumps(body), ContentType="application/json")
        sent += len(frame)
    return sent


def loop_runs(client: Any, model: str) -> list[str]:
    """One line per run of the drift loop that led to version 2: monitor, retrain, evaluate."""
    experiment = client.get_experiment_by_name("demo").experiment_id
    found = client.search_runs([experiment], "tags.`loop.deployment` = 'demo'", order_by=["attributes.start_time ASC"])
    runs = {r.info.run_id: r for r in found}
    version = client.get_model_version(model, "2")
    chain, run = [], runs.get(version.run_id)
    while run is not None:  # back from the retrain run that made version 2, through loop.parent_run_id
        chain.insert(0, run)
        run = runs.get(run.data.tags.get("loop.parent_run_id", ""))
    chain += [r for r in found if r.data.tags.get("loop.parent_run_id") == version.run_id]  # its evaluation
    lines = []
    for run in chain:
        tags, step = run.data.tags, run.data.tags["loop.step"]
        if step == "monitor":
            detail = f"{tags['monitor.verdict']} in {tags['monitor.drifted']} ({int(run.data.metrics['rows'])} rows)"
        elif step == "retrain":
            detail = f"{run.data.params.get('strategy')} from version 1: registered {model} version {version.version}"
        else:
            detail = f"version {version.version} {tags.get('evaluation.verdict')}; promoted to Production"
        lines.append(f"drift loop: {step} run {run.info.run_id[:8]}: {detail}")
    return lines


def _trip_alarm_while_baking(sm: Any, cloudwatch: Any) -> None:
    baking_waiter(sm).wait(EndpointName="demo", WaiterConfig=WAIT)
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="demo: 5xx spike")


def baking_waiter(sm: Any) -> Any:
    """A botocore waiter (data, not a loop) for the new fleet reaching its baking period."""
    import botocore.waiter

    model = botocore.waiter.WaiterModel(
        {
            "version": 2,
            "waiters": {
                "Baking": {
                    "operation": "DescribeEndpoint",
                    "delay": 1,
                    "maxAttempts": 600,
                    "acceptors": [
                        {
                            "matcher": "pathAny",
                            "state": "success",
                            "expected": "Baking",
                            "argument": "PendingDeploymentSummary.ProductionVariants[].VariantStatus[].Status",
                        },
                    ],
                }
            },
        }
    )
    return botocore.waiter.create_waiter_with_client("Baking", model, sm)

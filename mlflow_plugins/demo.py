"""The main job, end to end on embedded defaults: everything runs on this machine, offline.

Today it trains two versions of a small delivery-delay model and deploys them through the suite's
SageMaker client into the sandbox: create (the variant runs the serving runtime on the model), a
prediction, a canary update to v2 that completes, a canary update whose alarm trips during baking
and rolls back (the update fails, naming the alarm), the endpoint's lineage context, and delete.
It grows with every capability (training with ``mlflow run``, registry hooks).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_plugins.aws import AwsClients
from mlflow_plugins.errors import OpsError
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

ALARM = "demo-endpoint-5xx"
WAIT = {"Delay": 0.1, "MaxAttempts": 3000}


def train(path: Path, seed: int) -> Path:
    """A small scikit-learn pipeline predicting late deliveries, saved as an MLflow model."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"distance_km": rng.uniform(1, 300, 500), "stops": rng.integers(1, 10, 500).astype(float),
                          "weather": rng.choice(["clear", "rain", "snow"], 500)})
    late = (frame.distance_km / 100 + frame.stops / 5 + (frame.weather == "snow") * 1.5 + rng.normal(0, 0.5, 500)) > 3
    model = Pipeline([("prep", ColumnTransformer([("num", StandardScaler(), ["distance_km", "stops"]),
                                                  ("cat", OneHotEncoder(handle_unknown="ignore"), ["weather"])])),
                      ("clf", LogisticRegression())]).fit(frame, late.astype(int))
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(frame, model.predict(frame)))
    return path


def predict(clients: AwsClients) -> tuple[str, list[Any]]:
    rows = {"dataframe_records": [{"distance_km": 250.0, "stops": 8.0, "weather": "snow"},
                                  {"distance_km": 12.0, "stops": 1.0, "weather": "clear"}]}
    reply = clients("sagemaker-runtime").invoke_endpoint(
        EndpointName="demo", Body=json.dumps(rows), ContentType="application/json")
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
        versions = {v: str(train(Path(scratch) / f"v{v}", seed=v)) for v in (1, 2)}
        say("train: two versions of the delivery-delay model")
        deployment = deployer.create("demo", versions[1], base)
        say(f"create: endpoint demo is {deployment['status']} on v1 ({deployment['endpoint_config']})")
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
    say(f"rollback: {described['EndpointStatus']}, still serving {deployer.get('demo')['model_uri'].rsplit('/', 1)[-1]}")

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

"""The main job, end to end on embedded defaults: everything runs on this machine, offline.

Today it trains two versions of a small delivery-delay model, packages them into the sandbox's
S3, and drives a SageMaker endpoint through its whole life: create (the variant runs the serving
runtime on the model), a prediction, a canary update to v2 that completes, a canary update whose
alarm trips during baking and rolls back, the endpoint's lineage context, and delete. It grows with
every capability (training with ``mlflow run``, the ``-t sagemaker`` client, registry hooks).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_plugins.aws import AwsClients
from mlflow_plugins.packaging import model_archive
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

ALARM = "demo-endpoint-5xx"
WAIT = {"Delay": 0.1, "MaxAttempts": 3000}


def canary(wait_seconds: int) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY", "WaitIntervalInSeconds": wait_seconds,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            },
            "TerminationWaitInSeconds": 60,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]},
    }


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
    sm, cloudwatch, s3 = clients("sagemaker"), clients("cloudwatch"), clients("s3")
    started = time.monotonic()
    s3.create_bucket(Bucket="demo-models")
    with tempfile.TemporaryDirectory() as scratch:
        for version in ("1", "2"):
            archive = model_archive(train(Path(scratch) / f"v{version}", seed=int(version)))
            s3.put_object(Bucket="demo-models", Key=f"delivery/v{version}/model.tar.gz", Body=archive)
    say("train: two versions of the delivery-delay model packaged into s3://demo-models/delivery/")
    for version in ("1", "2"):
        sm.create_model(ModelName=f"demo-model-v{version}", ExecutionRoleArn=EXECUTION_ROLE_ARN,
                        PrimaryContainer={"Image": "mlflow-sagemaker-ops:latest",
                                          "ModelDataUrl": f"s3://demo-models/delivery/v{version}/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName=f"demo-config-v{version}", ProductionVariants=[{
            "VariantName": "main", "ModelName": f"demo-model-v{version}", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 4, "InitialVariantWeight": 1.0}])
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")

    sm.create_endpoint(EndpointName="demo", EndpointConfigName="demo-config-v1")
    say(f"create: endpoint demo is {status(sm)}")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="demo", WaiterConfig=WAIT)
    say(f"create: endpoint demo is {status(sm)} on demo-config-v1")
    variant, predictions = predict(clients)
    say(f"predict: variant {variant} of the serving runtime answered {predictions} (1 = late)")

    sm.update_endpoint(EndpointName="demo", EndpointConfigName="demo-config-v2", DeploymentConfig=canary(300))
    say(f"canary update to v2: {status(sm)}")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="demo", WaiterConfig=WAIT)
    say(f"canary update to v2: {status(sm)} on {config(sm)}; predict: {predict(clients)[1]}")

    sm.update_endpoint(EndpointName="demo", EndpointConfigName="demo-config-v1", DeploymentConfig=canary(600))
    baking_waiter(sm).wait(EndpointName="demo", WaiterConfig=WAIT)
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="demo: 5xx spike")
    say(f"canary update to v1: alarm {ALARM} tripped during baking, endpoint {status(sm)}")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="demo", WaiterConfig=WAIT)
    described = sm.describe_endpoint(EndpointName="demo")
    say(f"rollback: {described['EndpointStatus']} on {described['EndpointConfigName']}: {described['FailureReason']}")

    contexts = sm.list_contexts(SourceUri=described["EndpointArn"])["ContextSummaries"]
    say(f"lineage: endpoint context {contexts[0]['ContextName']} ({contexts[0]['ContextType']})")

    sm.delete_endpoint(EndpointName="demo")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="demo", WaiterConfig=WAIT)
    say(f"delete: endpoint demo is gone after {time.monotonic() - started:.1f} s in all")
    return described


def status(sm: Any) -> str:
    return sm.describe_endpoint(EndpointName="demo")["EndpointStatus"]


def config(sm: Any) -> str:
    return sm.describe_endpoint(EndpointName="demo")["EndpointConfigName"]


def baking_waiter(sm: Any) -> Any:
    """A botocore waiter (data, not a loop) for the new fleet reaching its baking period."""
    import botocore.waiter

    model = botocore.waiter.WaiterModel({"version": 2, "waiters": {"Baking": {
        "operation": "DescribeEndpoint", "delay": 1, "maxAttempts": 600,
        "acceptors": [
            {"matcher": "pathAny", "state": "success", "expected": "Baking",
             "argument": "PendingDeploymentSummary.ProductionVariants[].VariantStatus[].Status"},
            {"matcher": "path", "state": "failure", "expected": "InService", "argument": "EndpointStatus"},
        ]}}})
    return botocore.waiter.create_waiter_with_client("Baking", model, sm)

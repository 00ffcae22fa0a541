"""The main job, end to end on embedded defaults: everything runs in this process, offline.

Today it drives a SageMaker endpoint through its whole life in the sandbox: create, a canary
update that completes, a canary update whose alarm trips during baking and rolls back, the
endpoint's lineage context, and delete. It grows with every capability (training with
``mlflow run``, serving, the ``-t sagemaker`` client, registry hooks).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlflow_plugins.aws import AwsClients
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


def run(clients: AwsClients, say: Callable[[str], None]) -> dict[str, Any]:
    sm, cloudwatch = clients("sagemaker"), clients("cloudwatch")
    started = time.monotonic()
    for version in ("1", "2"):
        sm.create_model(ModelName=f"demo-model-v{version}", ExecutionRoleArn=EXECUTION_ROLE_ARN,
                        PrimaryContainer={"Image": f"mlflow-sagemaker-ops:{version}"})
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

    sm.update_endpoint(EndpointName="demo", EndpointConfigName="demo-config-v2", DeploymentConfig=canary(300))
    say(f"canary update to v2: {status(sm)}")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="demo", WaiterConfig=WAIT)
    say(f"canary update to v2: {status(sm)} on {config(sm)}")

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

from __future__ import annotations

from typing import Any

import pytest

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

ALARM = "endpoint-5xx"


class Hosting:
    """Builds SageMaker models and endpoint configs in the sandbox with plain boto3."""

    def __init__(self, aws: Any) -> None:
        self.aws = aws
        self.sm = aws("sagemaker")

    def model(self, name: str, image: str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ops:1") -> str:
        self.sm.create_model(
            ModelName=name,
            ExecutionRoleArn=EXECUTION_ROLE_ARN,
            PrimaryContainer={"Image": image},
        )
        return name

    def config(self, name: str, model: str, count: int = 4, variant: str = "main", **extra: Any) -> str:
        variants = [{
            "VariantName": variant, "ModelName": model, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": count, "InitialVariantWeight": 1.0,
        }]
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants, **extra)
        return name

    def endpoint(self, name: str, config: str) -> dict[str, Any]:
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        self.aws.wait("endpoint_in_service", EndpointName=name)
        return self.sm.describe_endpoint(EndpointName=name)

    def two_versions(self, endpoint: str = "ep", **config: Any) -> None:
        """An InService endpoint on config ``v1``, and a ready config ``v2``."""
        self.config("v1", self.model("m1"), **config)
        self.config("v2", self.model("m2"), **config)
        self.endpoint(endpoint, "v1")

    def alarm(self, name: str = ALARM) -> str:
        self.aws("cloudwatch").put_metric_alarm(
            AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        return name


@pytest.fixture
def hosting(aws):
    return Hosting(aws)


def blue_green(kind: str = "ALL_AT_ONCE", wait: int = 0, termination: int = 0,
               alarms: tuple[str, ...] = (), **routing: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": wait, **routing},
            "TerminationWaitInSeconds": termination,
        }
    }
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config

from __future__ import annotations

from typing import Any

import pytest

import mlflow_plugins
from mlflow_plugins.packaging import model_archive
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.serving.conftest import save_sklearn_model

ALARM = "endpoint-5xx"
# The suite's serving image: the sandbox registers it in its ECR at start and after every reset.
SUITE_IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/mlflow-sagemaker-ops:{mlflow_plugins.__version__}"


class Hosting:
    """Builds SageMaker models and endpoint configs in the sandbox with plain boto3."""

    def __init__(self, aws: Any) -> None:
        self.aws = aws
        self.sm = aws("sagemaker")

    def model(self, name: str, image: str = SUITE_IMAGE) -> str:
        self.sm.create_model(
            ModelName=name,
            ExecutionRoleArn=EXECUTION_ROLE_ARN,
            PrimaryContainer={"Image": image},
        )
        return name

    def config(self, name: str, model: str, count: int = 4, variant: str = "main", **extra: Any) -> str:
        variants = [
            {
                "VariantName": variant,
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": count,
                "InitialVariantWeight": 1.0,
            }
        ]
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
            AlarmName=name,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        return name


@pytest.fixture(scope="module")
def model_archives(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    dirs = {name: save_sklearn_model(root / name, seed=seed) for name, seed in (("a", 0), ("b", 5))}
    return {name: (path, model_archive(path)) for name, path in dirs.items()}


@pytest.fixture
def served(aws, model_archives):
    s3, sm = aws("s3"), aws("sagemaker")
    s3.create_bucket(Bucket="models")
    for name, (_, data) in model_archives.items():
        s3.put_object(Bucket="models", Key=f"{name}/model.tar.gz", Body=data)
        s3.put_object(Bucket="models", Key=f"mme/{name}.tar.gz", Body=data)
        sm.create_model(
            ModelName=f"model-{name}",
            ExecutionRoleArn=EXECUTION_ROLE_ARN,
            PrimaryContainer={"Image": "ops:1", "ModelDataUrl": f"s3://models/{name}/model.tar.gz"},
        )
    return aws


@pytest.fixture
def hosting(aws):
    return Hosting(aws)


def blue_green(
    kind: str = "ALL_AT_ONCE", wait: int = 0, termination: int = 0, alarms: tuple[str, ...] = (), **routing: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": wait, **routing},
            "TerminationWaitInSeconds": termination,
        }
    }
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config

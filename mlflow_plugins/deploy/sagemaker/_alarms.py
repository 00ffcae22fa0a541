"""The usual alarms of an endpoint variant (``auto_alarms=true``): 5XX errors and model latency,
created with the deployment, used for auto-rollback, and removed with it.

Names are ``<endpoint>-<variant>-5xx`` and ``<endpoint>-<variant>-model-latency``; the thresholds
are the ``alarm_*`` defaults below (AWS's own examples for deployment guardrails use the same
metrics: https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html).
"""

from __future__ import annotations

from typing import Any

ERRORS_PER_MINUTE = 5.0
LATENCY_MICROSECONDS = 500_000.0  # ModelLatency is reported in microseconds


def names(endpoint: str, variant: str) -> list[str]:
    return [f"{endpoint}-{variant}-5xx", f"{endpoint}-{variant}-model-latency"]


def definitions(endpoint: str, variant: str) -> list[dict[str, Any]]:
    """The usual alarms as PutMetricAlarm requests (also the properties of their
    ``AWS::CloudWatch::Alarm`` in an exported template: the same names)."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    errors, latency = names(endpoint, variant)
    common = {
        "Namespace": "AWS/SageMaker",
        "Dimensions": dimensions,
        "Period": 60,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    return [
        {
            "AlarmName": errors,
            "MetricName": "Invocation5XXErrors",
            "Statistic": "Sum",
            "Threshold": ERRORS_PER_MINUTE,
            "AlarmDescription": "mlflow-sagemaker-ops: variant 5XX errors",
            **common,
        },
        {
            "AlarmName": latency,
            "MetricName": "ModelLatency",
            "Statistic": "Average",
            "Threshold": LATENCY_MICROSECONDS,
            "AlarmDescription": "mlflow-sagemaker-ops: model latency",
            **common,
        },
    ]


def create(cloudwatch: Any, endpoint: str, variant: str) -> list[str]:
    made = []
    for alarm in definitions(endpoint, variant):
        cloudwatch.put_metric_alarm(**alarm)
        made.append(alarm["AlarmName"])
    return made


def delete(cloudwatch: Any, endpoint: str, variant: str) -> None:
    cloudwatch.delete_alarms(AlarmNames=names(endpoint, variant))

"""How a shadow variant compared with production on mirrored traffic, from what AWS records.

    from mlflow_plugins.deploy.sagemaker.shadow_report import compare_shadow

    report = compare_shadow(clients, "churn")   # clients("cloudwatch") -> a boto3 client
    log.info("%s", report.summary())
    report.agreement                            # None without data capture

It reads only AWS APIs, so it answers the same on SageMaker and in the sandbox:

* ``DescribeEndpoint``: the production variant (the first; the one a shadow copies) and the
  shadow variant, the endpoint's ``DataCaptureConfig`` and ``LastModifiedTime`` (the default
  start of the window: when the shadow went live).
* CloudWatch ``GetMetricStatistics`` in ``AWS/SageMaker`` per ``EndpointName`` and
  ``VariantName`` over the window: ``Invocations`` (Sum), ``ModelLatency`` (Average, Maximum;
  published in microseconds, reported here in milliseconds), ``Invocation4XXErrors`` and
  ``Invocation5XXErrors`` (Sum).
* With data capture enabled (capturing ``Output``): the capture records under
  ``<DestinationS3Uri>/<endpoint>/<variant>/`` written in the window, at most ``max_records`` per
  variant. A shadow record is paired with the production record of the same request: by
  ``eventMetadata.inferenceId`` when the caller set ``InferenceId``, else by ``eventId``. Pass
  ``InferenceId`` on AWS, where it is the documented way to tie records together; the sandbox
  also gives a request's shadow copy the production ``eventId``. Predictions agree when equal
  (numbers within ``tolerance``, relative); an answer of N predictions (a JSON list, or
  ``{"predictions": [...]}``) counts as N predictions.

Nothing is written and no exception escapes for missing data: a variant with no traffic reports
zero invocations and no latency; no capture means ``agreement`` is ``None`` and the summary says
how to get it (enable data capture on the endpoint).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

__all__ = ["VariantStats", "ShadowComparison", "compare_shadow"]

NAMESPACE = "AWS/SageMaker"


@dataclass(frozen=True)
class VariantStats:
    variant: str
    invocations: int
    latency_ms_avg: float | None
    latency_ms_max: float | None
    errors_4xx: int
    errors_5xx: int

    def describe(self) -> str:
        latency = (
            "no latency recorded"
            if self.latency_ms_avg is None
            else (f"model latency avg {self.latency_ms_avg:.1f} ms, max {self.latency_ms_max:.1f} ms")
        )
        return (
            f"{self.variant}: {self.invocations} invocation(s), {latency}, "
            f"{self.errors_4xx} 4xx and {self.errors_5xx} 5xx error(s)"
        )


@dataclass(frozen=True)
class ShadowComparison:
    endpoint: str
    since: datetime
    production: VariantStats
    shadow: VariantStats
    capture: bool  # data capture of outputs was on: predictions could be compared
    paired_requests: int
    predictions_compared: int
    predictions_agreeing: int

    @property
    def agreement(self) -> float | None:
        """The share of the shadow's predictions equal to production's, on paired requests."""
        if not self.predictions_compared:
            return None
        return self.predictions_agreeing / self.predictions_compared

    def summary(self) -> str:
        if self.agreement is not None:
            agreement = (
                f"agreement {self.agreement:.1%} ({self.predictions_agreeing}/{self.predictions_compared} "
                f"predictions on {self.paired_requests} mirrored request(s))"
            )
        elif self.capture:
            agreement = "agreement unknown: no mirrored request was captured for both variants yet"
        else:
            agreement = (
                "agreement unknown: data capture is off (enable DataCaptureConfig with Output capture "
                "to compare predictions)"
            )
        return (
            f"Shadow {self.shadow.variant} vs production {self.production.variant} on endpoint "
            f"{self.endpoint} since {self.since:%Y-%m-%d %H:%M:%S} UTC: {agreement}; production "
            f"{self.production.describe()}; shadow {self.shadow.describe()}."
        )


def compare_shadow(
    clients: Callable[[str], Any],
    endpoint: str,
    since: datetime | None = None,
    until: datetime | None = None,
    tolerance: float = 1e-6,
    max_records: int = 1000,
) -> ShadowComparison:
    """Compare ``endpoint``'s shadow variant with its production variant (see the module doc)."""
    described = clients("sagemaker").describe_endpoint(EndpointName=endpoint)
    shadows = described.get("ShadowProductionVariants") or []
    if not shadows:
        raise ValueError(
            f"Endpoint {endpoint} has no shadow variant (ShadowProductionVariants is empty), so there "
            "is nothing to compare. Deploy the candidate with strategy=shadow first."
        )
    production, shadow = described["ProductionVariants"][0]["VariantName"], shadows[0]["VariantName"]
    start = since or described["LastModifiedTime"]
    end = until or datetime.now(timezone.utc) + timedelta(minutes=1)
    cloudwatch = clients("cloudwatch")
    stats = {name: _variant_stats(cloudwatch, endpoint, name, start, end) for name in (production, shadow)}
    capture = described.get("DataCaptureConfig") or {}
    capturing = bool(capture.get("EnableCapture")) and bool(capture.get("DestinationS3Uri"))
    pairs: list[tuple[Any, Any]] = []
    if capturing:
        s3, prefix = clients("s3"), capture["DestinationS3Uri"]
        outputs = {
            name: _captured_outputs(s3, prefix, endpoint, name, start, end, max_records)
            for name in (production, shadow)
        }
        pairs = [
            (outputs[production][key], value) for key, value in outputs[shadow].items() if key in outputs[production]
        ]
    compared = agreeing = 0
    for ours, theirs in pairs:
        n, same = _agreement(ours, theirs, tolerance)
        compared, agreeing = compared + n, agreeing + same
    return ShadowComparison(
        endpoint, start, stats[production], stats[shadow], capturing, len(pairs), compared, agreeing
    )


def _variant_stats(cloudwatch: Any, endpoint: str, variant: str, start: datetime, end: datetime) -> VariantStats:
    def stat(metric: str, statistic: str) -> float | None:
        period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=metric,
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=[statistic],
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
        )["Datapoints"]
        values = [p[statistic] for p in points]
        if not values:
            return None
        if statistic == "Sum":
            return sum(values)
        if statistic == "Maximum":
            return max(values)
        weights = [p.get("SampleCount", 1.0) for p in points]  # Average over several periods
        return sum(v * w for v, w in zip(values, weights)) / sum(weights)

    average, peak = stat("ModelLatency", "Average"), stat("ModelLatency", "Maximum")
    return VariantStats(
        variant,
        int(stat("Invocations", "Sum") or 0),
        None if average is None else average / 1000,
        None if peak is None else peak / 1000,
        int(stat("Invocation4XXErrors", "Sum") or 0),
        int(stat("Invocation5XXErrors", "Sum") or 0),
    )


def _captured_outputs(
    s3: Any, destination: str, endpoint: str, variant: str, start: datetime, end: datetime, limit: int
) -> dict[str, Any]:
    """``{inferenceId or eventId: parsed output}`` from the variant's capture records in the window."""
    parsed = urlparse(destination)
    prefix = "/".join(p for p in (parsed.path.strip("/"), endpoint, variant) if p) + "/"
    found: dict[str, Any] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=prefix):
        for item in page.get("Contents", []):
            if not start.replace(microsecond=0) <= item["LastModified"] <= end:  # S3 keeps whole seconds
                continue
            body = s3.get_object(Bucket=parsed.netloc, Key=item["Key"])["Body"].read().decode("utf-8", "replace")
            for line in body.splitlines():
                if len(found) >= limit:
                    return found
                record = json.loads(line) if line.strip() else {}
                output = record.get("captureData", {}).get("endpointOutput")
                meta = record.get("eventMetadata", {})
                key = meta.get("inferenceId") or meta.get("eventId")
                if output is not None and key:
                    found[key] = _decoded(output)
    return found


def _decoded(output: dict[str, Any]) -> Any:
    data = output.get("data", "")
    if output.get("encoding") == "JSON":
        try:
            return json.loads(data)
        except ValueError:
            return data
    if output.get("encoding") == "CSV":
        return [line.strip() for line in data.splitlines() if line.strip()]
    return data


def _agreement(production: Any, shadow: Any, tolerance: float) -> tuple[int, int]:
    """(predictions compared, predictions equal) for one request's two answers."""
    ours, theirs = _predictions(production), _predictions(shadow)
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs) and ours:
        return len(ours), sum(_equal(a, b, tolerance) for a, b in zip(ours, theirs))
    return 1, int(_equal(production, shadow, tolerance))


def _predictions(answer: Any) -> Any:
    if isinstance(answer, dict) and isinstance(answer.get("predictions"), list):
        return answer["predictions"]
    return answer


def _equal(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y, tolerance) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k], tolerance) for k in a)
    return a == b

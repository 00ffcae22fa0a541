"""Shadow traffic: requests to production are mirrored to the shadow variant, its answers discarded,
both variants' metrics land in CloudWatch, and the comparison reads them back from AWS's APIs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from mlflow_plugins.deploy.sagemaker.shadow_report import compare_shadow
from tests.sandbox.test_serving import ROWS, host, invoke, local_predictions, variant

CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": "s3://models/capture",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
}


def shadowed(served, sampling=1.0, **extra):
    sm = served("sagemaker")
    shadow = {**variant("shadow", "model-b"), "InitialVariantWeight": sampling}
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[variant("primary", "model-a")],
        ShadowProductionVariants=[shadow],
        **extra,
    )
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")


def metric(aws, name, variant_name, statistic="Sum"):
    now = datetime.now(timezone.utc)
    points = aws("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=name,
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
        Period=3600,
        Statistics=[statistic],
        Dimensions=[{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": variant_name}],
    )["Datapoints"]
    return sum(p[statistic] for p in points)


def test_mirrored_requests_reach_the_shadow_and_the_comparison_names_agreement_and_latencies(
    served, sandbox, model_archives
):
    shadowed(served, DataCaptureConfig=CAPTURE)
    production, candidate = (local_predictions(model_archives[n][0]) for n in ("a", "b"))
    for _ in range(6):  # the caller only ever sees production's answers
        assert invoke(served, "ep") == ("primary", production)

    pairs = sandbox.control.shadow_pairs("ep")
    assert len(pairs) == 6
    assert {(p["production"]["variant"], p["shadow"]["variant"]) for p in pairs} == {("primary", "shadow")}
    assert all(json.loads(p["shadow"]["body"])["predictions"] == candidate for p in pairs)
    shadow_process = next(c for k, c in host(sandbox).containers.items() if k[2] == "shadow")
    assert shadow_process.answered == 0  # counted only for answers that reach callers
    assert metric(served, "Invocations", "primary") == metric(served, "Invocations", "shadow") == 6
    assert metric(served, "ModelLatency", "shadow", "Average") > 0

    report = compare_shadow(served, "ep")
    same = sum(a == b for a, b in zip(production, candidate))
    assert (report.paired_requests, report.predictions_compared) == (6, 6 * len(ROWS))
    assert report.agreement == pytest.approx(same / len(ROWS))
    assert report.production.invocations == report.shadow.invocations == 6
    assert report.production.latency_ms_avg > 0 and report.shadow.latency_ms_avg > 0
    summary = report.summary()
    assert f"agreement {same / len(ROWS):.1%}" in summary
    assert "primary: 6 invocation(s), model latency avg" in summary and "shadow: 6 invocation(s)" in summary


def test_capture_records_follow_sagemakers_layout(served, sandbox):
    shadowed(served, DataCaptureConfig=CAPTURE)
    served("sagemaker-runtime").invoke_endpoint(
        EndpointName="ep",
        Body=json.dumps({"dataframe_split": json.loads(ROWS.to_json(orient="split", index=False))}),
        ContentType="application/json",
        InferenceId="req-1",
    )
    sandbox.control.shadow_pairs("ep")  # the shadow's copy has finished
    keys = [o["Key"] for o in served("s3").list_objects_v2(Bucket="models", Prefix="capture/")["Contents"]]
    assert sorted(k.split("/")[2] for k in keys) == ["primary", "shadow"]
    assert all(k.startswith("capture/ep/") and k.endswith(".jsonl") and len(k.split("/")) == 8 for k in keys)
    record = json.loads(served("s3").get_object(Bucket="models", Key=keys[0])["Body"].read())
    assert record["eventVersion"] == "0" and record["eventMetadata"]["inferenceId"] == "req-1"
    assert record["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"


def test_without_capture_the_comparison_still_reports_metrics_and_says_why_agreement_is_unknown(served, sandbox):
    shadowed(served)
    invoke(served, "ep")
    sandbox.control.shadow_pairs("ep")
    report = compare_shadow(served, "ep")
    assert report.agreement is None and "data capture is off" in report.summary()
    assert (report.production.invocations, report.shadow.invocations) == (1, 1)


def test_errors_are_counted_per_variant_and_never_come_from_the_shadow(served, sandbox):
    shadowed(served)
    with pytest.raises(ClientError) as caught:  # a body the model rejects: both variants answer 400
        served("sagemaker-runtime").invoke_endpoint(
            EndpointName="ep", Body='{"rows": []}', ContentType="application/json"
        )
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert sandbox.control.shadow_pairs("ep")[0]["shadow"]["status"] == 400
    report = compare_shadow(served, "ep")
    assert (report.production.errors_4xx, report.shadow.errors_4xx) == (1, 1)
    assert report.production.errors_5xx == report.shadow.errors_5xx == 0


def test_the_shadow_weight_samples_the_copies(served, sandbox):
    shadowed(served, sampling=0.0001)
    for _ in range(5):
        invoke(served, "ep")
    assert sandbox.control.shadow_pairs("ep") == []
    with pytest.raises(ValueError, match="has no shadow variant"):
        served("sagemaker").create_endpoint_config(
            EndpointConfigName="plain", ProductionVariants=[variant("primary", "model-a")]
        )
        served("sagemaker").create_endpoint(EndpointName="plain", EndpointConfigName="plain")
        compare_shadow(served, "plain")

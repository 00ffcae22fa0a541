"""``mlflow run . -e monitor``: a window of an endpoint's traffic (or of rows from a file) against the
serving version's training baseline; one MLflow run with a metric per feature and test, the
verdict, a report with a picture per feature, and the same drift figures in CloudWatch.

Where the window comes from, one of:

* ``endpoint`` (and ``window``: ``1h``, ``30m``, or ``START/END`` in ISO 8601): the requests the
  endpoint captured in that window (:mod:`projects.capture`; the capture prefix is the endpoint's
  ``DataCaptureConfig`` unless ``capture`` names another), decoded as the serving runtime decoded
  them. ``model`` defaults to the registered version the endpoint serves (its
  ``mlflow-sagemaker-ops:registered-model`` and ``model-version`` tags).
* ``data``: the window's rows as a DataFrame source (a CSV or Parquet path or glob, ``s3://...``,
  or ``scenario:...``; columns the baseline does not know, such as the label, are ignored).

The baseline is the one ``train``, ``tune`` or ``retrain`` logged with the model version
(``baseline/statistics.json`` and ``constraints.json``); the tests and the rule are
:mod:`projects.drift`'s.

Logged: metrics ``drift.<feature>.<test>`` (``ks_statistic``, ``ks_pvalue``, ``wasserstein_std``
for numbers; ``chi2_statistic``, ``chi2_pvalue``, ``jensen_shannon``, ``linf`` for categories;
``missing_growth`` for both), ``drift.<feature>.drifted`` (1 or 0), ``drifted_features`` and
``rows``; tags ``monitor.verdict`` (``drift`` or ``no drift``; ``no traffic`` for an endpoint
window without a captured request, whose run is all that is logged), ``monitor.drifted`` (the features)
and the model version's name, version and run; ``drift/report.json``, ``drift/report.png`` and
``drift/report.html``. The model version gets the tags ``monitor.verdict``, ``monitor.drifted``
and ``monitor.run_id``, so its page shows the latest verdict.

With an endpoint, each feature's drift distance goes to CloudWatch as Model Monitor publishes it:
``feature_baseline_drift_<feature>`` in ``aws/sagemaker/Endpoints/data-metrics``, dimensions
``Endpoint`` and ``MonitoringSchedule`` (``schedule``, default ``mlflow-monitor-<endpoint>``); the
value is the KS statistic D for a numeric feature and the L-infinity distance (Model Monitor's
default ``categorical_drift_method``) for a categorical one, so an alarm on those metrics acts on
this monitor as on Model Monitor's.
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mlflow

from projects import baseline, capture, cli, drift, drift_report, tracking
from projects import data as data_mod

logger = logging.getLogger(__name__)
REFUSED = re.compile(r"[^A-Za-z0-9_\-. /]")  # characters MLflow does not allow in a metric name
NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
CLOUDWATCH_MAX_AGE = timedelta(days=14)  # PutMetricData refuses older data points
NO_TRAFFIC = "no traffic"  # the verdict of an endpoint window without a captured request  # where Model Monitor publishes feature_baseline_drift_*


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m projects.monitor", description=__doc__.splitlines()[0])
    p.add_argument(
        "--model",
        default="",
        help="the serving version: models:/name/N, models:/name@alias or /Stage (default: the endpoint's)",
    )
    p.add_argument("--data", default="", help="the window's rows: CSV/Parquet path or glob, s3://... (or --endpoint)")
    p.add_argument("--endpoint", default="", help="read the window from this endpoint's captured requests")
    p.add_argument("--window", default="1h", help="with --endpoint: 1h, 30m, 2d (up to now) or START/END (ISO 8601)")
    p.add_argument("--capture", default="", help="with --endpoint: the capture prefix (default: its DataCaptureConfig)")
    p.add_argument("--region", default="", help="with --endpoint: its AWS region (default: AWS_REGION or the profile)")
    p.add_argument("--assume-role-arn", default="", help="with --endpoint: an IAM role to assume for the AWS calls")
    p.add_argument(
        "--schedule", default="", help="CloudWatch MonitoringSchedule dimension (default mlflow-monitor-<endpoint>)"
    )
    p.add_argument("--alpha", type=float, default=drift.ALPHA, help="family-wise significance level")
    p.add_argument(
        "--threshold",
        type=optional_number,
        default="",
        help="KS D from which a numeric feature drifts (empty: the baseline's constraints.json)",
    )
    p.add_argument(
        "--categorical-threshold",
        type=optional_number,
        default="",
        help="Jensen-Shannon distance from which a categorical feature drifts (empty: constraints.json)",
    )
    return p


def metric_key(feature: str, test: str) -> str:
    """``drift.<feature>.<test>``, with characters MLflow refuses in a metric name replaced by ``_``."""
    return f"drift.{REFUSED.sub('_', feature)}.{test}"


def run(args: argparse.Namespace) -> drift.Report:
    if bool(args.data) == bool(args.endpoint):
        raise capture.CaptureError(
            f"data={args.data!r} and endpoint={args.endpoint!r}: the window comes from exactly one of them. "
            "Allowed: -P data=<rows> or -P endpoint=<name> (with -P window=1h). Pass one."
        )
    clients = None
    if args.endpoint:
        from mlflow_plugins.aws import AwsSettings, make_clients

        clients = make_clients(AwsSettings(region=args.region or None, assume_role_arn=args.assume_role_arn or None))
        described = clients("sagemaker").describe_endpoint(EndpointName=args.endpoint)  # read once, used thrice
        model_uri = args.model or _served_version(clients("sagemaker"), args.endpoint, described["EndpointArn"])
        version = tracking.resolve(model_uri)
        statistics, constraints = baseline.load(version.run_id)  # before any capture is read
        span = capture.window(args.window)
        prefix = args.capture or capture.destination(described)
        found = capture.records(clients("s3"), prefix, args.endpoint, span, capture.production_variants(described))
        window = capture.rows(found, f"models:/{version.name}/{version.version}")
        source = f"{prefix.rstrip('/')}/{args.endpoint} {span}"
        if window.empty:  # a quiet hour is not an error for a scheduled monitor: a run says so
            return _no_traffic(version, source)
    else:
        if not args.model:
            raise capture.CaptureError("model is not set. Allowed: models:/name/N, @alias or /Stage. Pass -P model=...")
        version = tracking.resolve(args.model)
        statistics, constraints = baseline.load(version.run_id)
        window = data_mod.read(args.data)
        source = args.data
    report = drift.compare(statistics, constraints, window, args.alpha, args.threshold, args.categorical_threshold)
    with mlflow.start_run() as active:
        mlflow.set_tags(
            {
                "project.entry_point": "monitor",
                "monitor.verdict": report.verdict,
                "monitor.drifted": ",".join(report.drifted),
                "monitor.model_name": version.name,
                "monitor.model_version": str(version.version),
                "monitor.baseline_run_id": version.run_id,
            }
        )
        tracking.log_params(
            {
                "model": f"models:/{version.name}/{version.version}",
                "data": source,
                "alpha": args.alpha,
                **{f"threshold.{kind}": value for kind, value in report.thresholds.items()},
            }
        )
        metrics = {"rows": report.rows, "drifted_features": len(report.drifted)}
        for feature in report.features:
            metrics.update({metric_key(feature.feature, test): value for test, value in feature.metrics.items()})
            metrics[metric_key(feature.feature, "drifted")] = float(feature.drifted)
        mlflow.log_metrics(metrics)
        mlflow.log_dict(
            {
                "verdict": report.verdict,
                "drifted": report.drifted,
                "rows": report.rows,
                "alpha": report.alpha,
                "thresholds": report.thresholds,
                "features": [asdict(f) for f in report.features],
            },
            "drift/report.json",
        )
        title = f"{version.name} version {version.version}: {source}"
        with tempfile.TemporaryDirectory() as scratch:
            (Path(scratch) / "report.png").write_bytes(drift_report.figure(statistics, window, report))
            (Path(scratch) / "report.html").write_text(drift_report.page(report, "report.png", title))
            mlflow.log_artifacts(scratch, "drift")
        if window.attrs.get("skipped_requests"):
            mlflow.log_metric("skipped_requests", window.attrs["skipped_requests"])
        if clients is not None:
            schedule = args.schedule or f"mlflow-monitor-{args.endpoint}"
            mlflow.set_tag(
                "monitor.cloudwatch", _publish(clients("cloudwatch"), args.endpoint, schedule, report, span.end)
            )
    client = mlflow.MlflowClient()
    for key, value in {
        "monitor.verdict": report.verdict,
        "monitor.drifted": ",".join(report.drifted),
        "monitor.run_id": active.info.run_id,
    }.items():
        client.set_model_version_tag(version.name, str(version.version), key, value)
    logger.info("monitor: %s version %s: %s", version.name, version.version, report.summary())
    return report


def _no_traffic(version, source: str) -> drift.Report:
    """A run with the verdict ``no traffic`` (the version's own verdict tags are left as they are)."""
    with mlflow.start_run():
        mlflow.set_tags(
            {
                "project.entry_point": "monitor",
                "monitor.verdict": NO_TRAFFIC,
                "monitor.model_name": version.name,
                "monitor.model_version": str(version.version),
            }
        )
        tracking.log_params({"model": f"models:/{version.name}/{version.version}", "data": source})
        mlflow.log_metric("rows", 0)
    logger.info("monitor: %s version %s: no captured request in %s", version.name, version.version, source)
    return drift.Report([], 0, 0.0)


def _served_version(sagemaker, endpoint: str, arn: str) -> str:
    """``models:/name/N`` of the registered version the endpoint serves, from the suite's tags."""
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    name = tags.get("mlflow-sagemaker-ops:registered-model")
    number = tags.get("mlflow-sagemaker-ops:model-version")
    if not (name and number):
        raise capture.CaptureError(
            f"endpoint {endpoint!r} does not say which registered model version it serves (no "
            "mlflow-sagemaker-ops:registered-model/model-version tags: it was not deployed from the registry). "
            "Allowed: an endpoint deployed from models:/... Pass -P model=models:/name/N."
        )
    return f"models:/{name}/{number}"


def _publish(cloudwatch, endpoint: str, schedule: str, report: drift.Report, at: datetime) -> str:
    """Each feature's drift distance, as Model Monitor publishes ``feature_baseline_drift_<feature>``,
    stamped with the window's end. What happened, for the run's ``monitor.cloudwatch`` tag: a failure
    is said, never raised (the verdict still reaches the version, and the loop acts on it)."""
    if datetime.now(timezone.utc) - at > CLOUDWATCH_MAX_AGE:
        return f"not published: the window ended {at:%Y-%m-%dT%H:%M:%SZ}, older than CloudWatch accepts (2 weeks)"
    dimensions = [{"Name": "Endpoint", "Value": endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}]
    data = []
    for feature in report.features:
        value = feature.metrics.get("ks_statistic" if feature.kind == "numeric" else "linf")
        if value is not None:
            name = f"feature_baseline_drift_{feature.feature}"
            data.append({"MetricName": name, "Dimensions": dimensions, "Value": value, "Timestamp": at})
    try:
        for start in range(0, len(data), 1000):  # PutMetricData takes at most 1,000 metrics a call
            cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 1000])
    except Exception as error:  # noqa: BLE001 - AccessDenied and the like: said on the run, the verdict stands
        logger.warning("monitor: drift metrics not published to CloudWatch: %s", error)
        return f"not published: {type(error).__name__}: {error}"[:5000]
    logger.info("monitor: published %d feature_baseline_drift metrics for %s", len(data), endpoint)
    return f"published {len(data)} metrics to {NAMESPACE}"


def optional_number(value: str) -> float | None:
    """A threshold: a number, or empty for the baseline's own (argparse names a bad value)."""
    return None if value == "" else float(value)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cli.main(parser(), run, argv)


if __name__ == "__main__":
    main()

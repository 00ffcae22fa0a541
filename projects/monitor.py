"""``mlflow run . -e monitor``: a window of captured inputs against the serving version's training
baseline; one MLflow run with a metric per feature and test, and the verdict.

``data`` is the window's rows as a DataFrame source (a CSV or Parquet path or glob, ``s3://...``,
or ``scenario:...``; columns the baseline does not know, such as the label, are ignored). The
baseline is the one ``train``, ``tune`` or ``retrain`` logged with ``model``
(``baseline/statistics.json`` and ``constraints.json``); the tests and the rule are
:mod:`projects.drift`'s.

Logged: metrics ``drift.<feature>.<test>`` (``ks_statistic``, ``ks_pvalue``, ``wasserstein_std``
for numbers; ``chi2_statistic``, ``chi2_pvalue``, ``jensen_shannon``, ``linf`` for categories;
``missing_growth`` for both), ``drift.<feature>.drifted`` (1 or 0), ``drifted_features`` and
``rows``; tags ``monitor.verdict`` (``drift`` or ``no drift``), ``monitor.drifted`` (the features)
and the model version's name, version and run; ``drift/report.json``. The model version gets the
tags ``monitor.verdict``, ``monitor.drifted`` and ``monitor.run_id``, so its page shows the latest
verdict.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import asdict

import mlflow

from projects import baseline, cli, drift, tracking
from projects import data as data_mod

logger = logging.getLogger(__name__)
REFUSED = re.compile(r"[^A-Za-z0-9_\-. /]")  # characters MLflow does not allow in a metric name


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m projects.monitor", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the serving version: models:/name/N, models:/name@alias or /Stage")
    p.add_argument("--data", required=True, help="the window's captured rows: CSV/Parquet path or glob, s3://...")
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
    version = tracking.resolve(args.model)
    statistics, constraints = baseline.load(version.run_id)
    window = data_mod.read(args.data)
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
                "model": args.model,
                "data": args.data,
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
    client = mlflow.MlflowClient()
    for key, value in {
        "monitor.verdict": report.verdict,
        "monitor.drifted": ",".join(report.drifted),
        "monitor.run_id": active.info.run_id,
    }.items():
        client.set_model_version_tag(version.name, str(version.version), key, value)
    logger.info("monitor: %s version %s: %s", version.name, version.version, report.summary())
    return report


def optional_number(value: str) -> float | None:
    """A threshold: a number, or empty for the baseline's own (argparse names a bad value)."""
    return None if value == "" else float(value)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cli.main(parser(), run, argv)


if __name__ == "__main__":
    main()

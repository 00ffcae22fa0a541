"""The training data's baseline, in SageMaker Model Monitor's own formats, logged with the model.

``train``, ``tune`` and ``retrain`` log ``baseline/statistics.json`` and
``baseline/constraints.json`` for the features the model was fitted on, so the same two files
serve this project's ``monitor`` (:mod:`projects.drift`) and a real Model Monitor schedule
(``BaselineConfig``'s ``StatisticsResource`` and ``ConstraintsResource``).

The formats are the documented ones ("Schema for Statistics (statistics.json file)" and "Schema for
Constraints (constraints.json file)" in the SageMaker Developer Guide), checked by
``tests/project/test_baseline.py`` against JSON Schemas written from those pages:

* a numeric column (``Integral`` or ``Fractional``) has ``numerical_statistics``: ``common``
  (``num_present``, ``num_missing``), mean, sum, population standard deviation, min, max, and a
  ``distribution.kll``: 10 equal-width ``buckets`` (as Model Monitor materialises them) and a KLL
  ``sketch`` with Deequ's parameters (``c`` 0.64, ``k`` 2048) whose ``data`` are the compactors'
  items, level ``h`` weighing ``2**h``. Up to 2,048 values the sketch is exact (level 0 holds every
  value); above, it is what error-free compaction of the sorted values leaves: one value per
  ``2**h`` consecutive ones, so its quantiles are within ``2**h / n`` of the data's.
* any other column is ``String``, with ``string_statistics``: ``common``, ``distinct_count`` and
  the ``categorical`` buckets (value and count; the 1,000 most frequent values).
* constraints: each feature's type, ``completeness`` (share present), ``is_non_negative`` for
  numbers, the observed ``domains`` for strings of at most 20 values, and ``monitoring_config``
  with the documented defaults, whose ``comparison_threshold`` and
  ``categorical_comparison_threshold`` (0.1) are also the effect-size thresholds of our monitor.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KLL_C, KLL_K = 0.64, 2048  # Deequ's KLL defaults (shrinking factor, sketch size), which Model Monitor runs on
BUCKETS = 10  # "By default, we materialize the distribution in 10 buckets"
MAX_CATEGORIES = 1000  # categorical buckets kept per string feature (the most frequent)
MAX_DOMAIN = 20  # a string feature with at most this many values gets a domain constraint
THRESHOLD = 0.1  # the documented default of comparison_threshold and categorical_comparison_threshold
ARTIFACTS = "baseline"  # run artifact directory of statistics.json and constraints.json


def numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def inferred_type(series: pd.Series) -> str:
    if not numeric(series):
        return "String"
    return "Integral" if pd.api.types.is_integer_dtype(series) else "Fractional"


def statistics(features: pd.DataFrame) -> dict[str, Any]:
    """``statistics.json`` of ``features`` (one entry per column, in column order)."""
    return {
        "version": 0,
        "dataset": {"item_count": len(features)},
        "features": [_feature_statistics(str(name), features[name]) for name in features.columns],
    }


def _feature_statistics(name: str, series: pd.Series) -> dict[str, Any]:
    present = series.dropna()
    common = {"num_present": int(len(present)), "num_missing": int(len(series) - len(present))}
    kind = inferred_type(series)
    if kind == "String":
        counts = present.astype(str).value_counts()
        buckets = [{"value": value, "count": int(count)} for value, count in counts.head(MAX_CATEGORIES).items()]
        return {
            "name": name,
            "inferred_type": kind,
            "string_statistics": {
                "common": common,
                "distinct_count": float(len(counts)),
                "distribution": {"categorical": {"buckets": buckets}},
            },
        }
    values = np.sort(present.to_numpy(dtype=float))
    stats: dict[str, Any] = {"common": common}
    if len(values):
        stats.update(
            mean=float(values.mean()),
            sum=float(values.sum()),
            std_dev=float(values.std()),
            min=float(values[0]),
            max=float(values[-1]),
            distribution={
                "kll": {
                    "buckets": _buckets(values),
                    "sketch": {"parameters": {"c": KLL_C, "k": KLL_K}, "data": kll_levels(values)},
                }
            },
        )
    return {"name": name, "inferred_type": kind, "numerical_statistics": stats}


def _buckets(values: np.ndarray) -> list[dict[str, float]]:
    counts, edges = np.histogram(values, bins=BUCKETS, range=(values[0], values[-1]))
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(BUCKETS)
    ]


def kll_levels(values: np.ndarray) -> list[list[float]]:
    """The compactors of a KLL sketch of sorted ``values``: level ``h`` holds items weighing ``2**h``.

    The top level is the lowest whose items fit in ``KLL_K``; it keeps the middle value of each run
    of ``2**top`` sorted values, and the remainder goes down level by level (at most one item each),
    so the weights add up to ``len(values)`` exactly."""
    top = 0
    while len(values) >> top > KLL_K:
        top += 1
    levels: list[list[float]] = [[] for _ in range(top + 1)]
    start = 0
    for level in range(top, -1, -1):
        size = 1 << level
        runs = (len(values) - start) // size
        middles = start + np.arange(runs) * size + size // 2
        levels[level] = values[middles].tolist()
        start += runs * size
    return levels


def sketch_sample(levels: list[list[float]]) -> np.ndarray:
    """The values a KLL sketch stands for, each item repeated by its weight (sorted)."""
    return np.sort(
        np.concatenate(
            [np.repeat(np.asarray(items, dtype=float), 1 << level) for level, items in enumerate(levels)]
            or [np.empty(0)]
        )
    )


def constraints(features: pd.DataFrame, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """``constraints.json`` suggested from ``features`` (as Model Monitor's baselining job suggests)."""
    stats = stats or statistics(features)
    entries = []
    for feature in stats["features"]:
        series = features[feature["name"]]
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": feature["inferred_type"],
            "completeness": float(series.notna().mean()) if len(series) else 0.0,
        }
        if feature["inferred_type"] == "String":
            domain = sorted(series.dropna().astype(str).unique())
            if len(domain) <= MAX_DOMAIN:
                entry["string_constraints"] = {"domains": domain}
        else:
            entry["num_constraints"] = {"is_non_negative": bool((series.dropna() >= 0).all())}
        entries.append(entry)
    return {
        "version": 0,
        "features": entries,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": THRESHOLD,
            "domain_content_threshold": THRESHOLD,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": THRESHOLD,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": THRESHOLD,
                "categorical_drift_method": "LInfinity",
            },
        },
    }


def log(features: pd.DataFrame) -> dict[str, Any]:
    """Log the baseline of ``features`` to the active run (``baseline/statistics.json`` and
    ``baseline/constraints.json``); the statistics."""
    import mlflow

    stats = statistics(features)
    with tempfile.TemporaryDirectory() as tmp:
        for name, document in (("statistics.json", stats), ("constraints.json", constraints(features, stats))):
            (Path(tmp) / name).write_text(json.dumps(document, indent=1))
        mlflow.log_artifacts(tmp, ARTIFACTS)
    return stats


def load(run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The statistics and constraints a run logged, with a clear error when it logged none."""
    import mlflow
    from mlflow.exceptions import MlflowException

    names = ("statistics.json", "constraints.json")
    try:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACTS))
    except MlflowException:
        local = None
    if local is None or not all((local / name).is_file() for name in names):
        raise MissingBaseline(
            f"run {run_id} has no {ARTIFACTS}/statistics.json and constraints.json: it was trained "
            "before baselines were logged, or not by this project. Retrain it "
            "(mlflow run . -e retrain) or train a new version."
        )
    statistics_json, constraints_json = (json.loads((local / name).read_text()) for name in names)
    return statistics_json, constraints_json


class MissingBaseline(LookupError):
    """A model version whose run logged no baseline."""

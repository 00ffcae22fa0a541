"""The training baseline: statistics.json and constraints.json accepted by JSON Schemas written from
Model Monitor's documentation (tests/project/model_monitor/), with values that match the data."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from projects import baseline, scenario

SCHEMAS = Path(__file__).parent / "model_monitor"


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    frame = scenario.week(0, 8, rows=3000).drop(columns=[scenario.TARGET])
    frame.loc[frame.index[:30], "cargo_tonnes"] = np.nan  # a feature with missing values
    frame.loc[frame.index[:10], "weather"] = None
    return frame


def test_the_files_follow_model_monitors_documented_schemas(features):
    stats = baseline.statistics(features)
    validator("statistics").validate(stats)
    validator("constraints").validate(baseline.constraints(features, stats))


@pytest.mark.parametrize(
    "document, path, value",
    [
        ("statistics", ("features", 0, "inferred_type"), "Float"),
        ("statistics", ("features", 0, "numerical_statistics", "common"), {"num_present": 1}),
        ("statistics", ("features", 8, "string_statistics", "distribution"), {"buckets": []}),
        ("constraints", ("monitoring_config", "distribution_constraints", "categorical_drift_method"), "JS"),
        ("constraints", ("features", 0, "completeness"), 1.5),
    ],
)
def test_the_schemas_refuse_what_the_documentation_does_not_allow(features, document, path, value):
    stats = baseline.statistics(features)
    bad = copy.deepcopy(stats if document == "statistics" else baseline.constraints(features, stats))
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not validator(document).is_valid(bad)


def test_the_statistics_are_the_datas(features):
    stats = {f["name"]: f for f in baseline.statistics(features)["features"]}
    assert list(stats) == list(features.columns)
    assert {n: f["inferred_type"] for n, f in stats.items() if n in ("stops", "cargo_tonnes", "weather")} == {
        "stops": "Integral",
        "cargo_tonnes": "Fractional",
        "weather": "String",
    }
    cargo = stats["cargo_tonnes"]["numerical_statistics"]
    assert cargo["common"] == {"num_present": 2970, "num_missing": 30}
    assert cargo["mean"] == pytest.approx(features.cargo_tonnes.mean())
    assert cargo["std_dev"] == pytest.approx(features.cargo_tonnes.std(ddof=0))
    assert (cargo["min"], cargo["max"]) == (features.cargo_tonnes.min(), features.cargo_tonnes.max())
    buckets = cargo["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and sum(b["count"] for b in buckets) == 2970
    assert buckets[0]["lower_bound"] == cargo["min"] and buckets[-1]["upper_bound"] == cargo["max"]
    weather = stats["weather"]["string_statistics"]
    assert weather["common"] == {"num_present": 2990, "num_missing": 10} and weather["distinct_count"] == 4
    counts = features.weather.value_counts()
    assert {b["value"]: b["count"] for b in weather["distribution"]["categorical"]["buckets"]} == counts.to_dict()


def test_the_constraints_describe_the_training_data(features):
    entries = {c["name"]: c for c in baseline.constraints(features)["features"]}
    assert entries["cargo_tonnes"]["completeness"] == pytest.approx(0.99)
    assert entries["stops"]["num_constraints"] == {"is_non_negative": True}
    assert entries["weather"]["string_constraints"] == {"domains": ["clear", "fog", "rain", "snow"]}


@pytest.mark.parametrize("rows", [7, 2048, 2049, 10_000, 100_003])
def test_the_kll_sketch_weighs_every_value_once_and_keeps_the_quantiles(rows):
    values = np.sort(np.random.default_rng(rows).lognormal(size=rows))
    levels = baseline.kll_levels(values)
    assert sum(len(items) << level for level, items in enumerate(levels)) == rows
    assert all(len(items) <= baseline.KLL_K for items in levels)
    sample = baseline.sketch_sample(levels)
    if rows <= baseline.KLL_K:
        assert levels == [values.tolist()]  # exact
    # Every quantile's rank is within one top-level weight of the data's.
    top = 1 << (len(levels) - 1)
    ranks = np.searchsorted(values, sample[:: max(rows // 50, 1)], side="right")
    assert np.all(np.abs(ranks - np.arange(0, rows, max(rows // 50, 1)) - 1) <= top)

"""Drift against the training baseline on the truck-delay scenario, whose drifting inputs are known
(``scenario.DRIFTING``): weeks that do not drift say so, weeks that drift name those inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from projects import baseline, drift, scenario

WEEKS, DRIFT_FROM = 8, 4  # weeks 0-4 share one distribution; 5, 6 and 7 drift more and more


@pytest.fixture(scope="module")
def trained():
    """The baseline of the training weeks 0-3 (seed 7), as train logs it."""
    features = pd.concat([scenario.week(i, WEEKS, drift_from=DRIFT_FROM) for i in range(DRIFT_FROM)], ignore_index=True)
    features = features.drop(columns=[scenario.TARGET])
    stats = baseline.statistics(features)
    return stats, baseline.constraints(features, stats)


def window(index: int, seed: int, rows: int = 2000, **options) -> pd.DataFrame:
    return scenario.week(index, WEEKS, rows=rows, seed=seed, drift_from=DRIFT_FROM, **options)


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("index", [0, 2, 4])
def test_weeks_without_drift_say_no_drift(trained, index, seed):
    report = drift.compare(*trained, window(index, seed))
    assert report.verdict == "no drift", report.summary()
    assert len(report.features) == 11 and report.rows == 2000


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("index", [5, 6, 7])
def test_drifting_weeks_name_the_drifting_features_and_no_other(trained, index, seed):
    report = drift.compare(*trained, window(index, seed))
    assert report.verdict == "drift"
    assert set(report.drifted) <= set(scenario.DRIFTING), report.summary()
    # The numeric inputs move first; the route mix (a 0.15 change of two shares at the last week) by week 7.
    assert {"distance_km", "stops", "planned_hours"} <= set(report.drifted), report.summary()
    if index == 7:
        assert set(report.drifted) == set(scenario.DRIFTING)


def test_each_feature_reports_its_tests(trained):
    report = drift.compare(*trained, window(7, 11))
    by_name = {f.feature: f for f in report.features}
    distance, route = by_name["distance_km"], by_name["route_type"]
    assert distance.kind == "numeric" and set(distance.metrics) == {
        "ks_statistic",
        "ks_pvalue",
        "wasserstein_std",
        "missing_growth",
    }
    assert distance.metrics["ks_statistic"] >= 0.1 and distance.metrics["wasserstein_std"] > 0.5
    assert route.kind == "categorical" and set(route.metrics) == {
        "chi2_statistic",
        "chi2_pvalue",
        "jensen_shannon",
        "linf",
        "missing_growth",
    }
    assert "KS D" in distance.reason and "Jensen-Shannon distance" in route.reason
    assert report.summary().startswith("drift in distance_km, stops, route_type, planned_hours over 2000 rows: ")


def test_a_category_the_baseline_never_saw_is_named(trained):
    report = drift.compare(*trained, window(4, 11, new_route_week=4))
    route = next(f for f in report.features if f.feature == "route_type")
    assert route.unseen == ("mountain",) and route.drifted


def test_a_small_undrifted_window_is_not_noise(trained):
    """Forty rows: a KS D of 0.1 is common by chance there; the corrected test keeps it quiet."""
    assert drift.compare(*trained, window(1, 11, rows=40)).verdict == "no drift"


def test_thresholds_come_from_the_constraints_unless_given(trained):
    stats, constraints = trained
    strict = {
        **constraints,
        "monitoring_config": {
            **constraints["monitoring_config"],
            "distribution_constraints": {
                **constraints["monitoring_config"]["distribution_constraints"],
                "comparison_threshold": 0.9,
            },
        },
    }
    assert drift.compare(stats, strict, window(7, 11)).drifted == ["route_type"]
    assert drift.compare(stats, strict, window(7, 11), threshold=0.1).verdict == "drift"


def test_missing_values_that_grow_are_drift(trained):
    rows = window(1, 11)
    rows.loc[rows.index[:600], "cargo_tonnes"] = None
    report = drift.compare(*trained, rows)
    assert report.drifted == ["cargo_tonnes"]
    assert "missing values grew by 0.300" in report.features[6].reason


@pytest.mark.parametrize(
    "rows, words",
    [
        (
            lambda w: w.drop(columns=["stops", "weather"]),
            "the window lacks the baseline's features ['stops', 'weather']",
        ),
        (lambda w: w.iloc[:0], "the window has no rows"),
    ],
)
def test_a_window_that_cannot_be_compared_says_why(trained, rows, words):
    with pytest.raises(drift.DriftError, match=words.replace("[", r"\[").replace("]", r"\]")):
        drift.compare(*trained, rows(window(1, 11, rows=50)))

"""Per-feature drift of a window of inputs (a pandas DataFrame of captured rows) against the
training baseline (:mod:`projects.baseline`'s ``statistics.json`` and ``constraints.json``).

The statistics come from SciPy, not from hand-written formulas:

* numeric features: the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) against the
  values the baseline's KLL sketch stands for. Its statistic D (the largest gap between the two
  cumulative distributions) is bounded in [0, 1] and free of the feature's unit, so one threshold
  fits every feature, and it comes with a p-value. The Wasserstein distance
  (``scipy.stats.wasserstein_distance``), divided by the baseline's standard deviation, is logged
  beside it: how far the values moved, in standard deviations, which is what a person reading the
  report wants to know, but it is unbounded and has no test of its own, so it does not decide.
* categorical features: Pearson's chi-squared test of the 2 x K table of baseline and window counts
  (``scipy.stats.chi2_contingency``; a category the baseline never saw is a column of its own), and
  the Jensen-Shannon distance of the two frequency vectors (``scipy.spatial.distance.jensenshannon``,
  base 2, so in [0, 1]) as the effect size. The L-infinity distance (the largest change of one
  category's share, Model Monitor's default ``categorical_drift_method``) is logged too.
* The Population Stability Index is not used: SciPy does not have it, and the Jensen-Shannon
  distance is its bounded, symmetric relative (both compare binned frequencies through
  Kullback-Leibler divergences; JS stays finite when a bin is empty on one side, PSI does not).

A feature drifts when its test is significant after a Bonferroni correction over the features
compared (p x features < ``alpha``, 0.01 by default) **and** its effect size reaches the threshold
of the baseline's ``constraints.json`` (``comparison_threshold`` for D, ``categorical_comparison_threshold``
for the JS distance; 0.1 by default). The test alone would flag negligible shifts in windows of
many thousand rows; the effect size alone would flag noise in windows of a few dozen. A feature
whose share of missing values grows by more than the threshold drifts too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from projects import baseline as baseline_mod

ALPHA = 0.01  # family-wise significance level over the features of one comparison
OTHER = "(other)"  # baseline values beyond the categorical buckets kept
EXACT_PAIRS = 100_000  # ks_2samp's exact p-value up to this many (baseline x window) pairs


class DriftError(ValueError):
    """A window that cannot be compared with the baseline (no rows, a feature missing)."""


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric" or "categorical"
    drifted: bool
    reason: str
    metrics: dict[str, float]  # per test: ks_statistic, ks_pvalue, wasserstein_std | chi2_*, jensen_shannon, linf
    unseen: tuple[str, ...] = ()  # categories the baseline never saw


@dataclass(frozen=True)
class Report:
    features: list[FeatureDrift]
    rows: int
    alpha: float
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def verdict(self) -> str:
        return "drift" if self.drifted else "no drift"

    def summary(self) -> str:
        if not self.drifted:
            return f"no drift in {len(self.features)} features over {self.rows} rows"
        return f"drift in {', '.join(self.drifted)} over {self.rows} rows: " + "; ".join(
            f"{f.feature}: {f.reason}" for f in self.features if f.drifted
        )


def compare(
    statistics: dict[str, Any],
    constraints: dict[str, Any],
    window: pd.DataFrame,
    alpha: float = ALPHA,
    threshold: float | None = None,
    categorical_threshold: float | None = None,
) -> Report:
    """Each baseline feature of ``window`` against the baseline; columns the baseline lacks are ignored."""
    features = statistics["features"]
    names = [f["name"] for f in features]
    missing = [n for n in names if n not in window.columns]
    if missing:
        raise DriftError(
            f"the window lacks the baseline's features {missing} (its columns: "
            f"{', '.join(map(str, window.columns))}). Pass rows with every feature the model takes."
        )
    if window.empty:
        raise DriftError("the window has no rows. Pick a window (or capture prefix) that holds captured requests.")
    config = constraints.get("monitoring_config", {}).get("distribution_constraints", {})
    default = baseline_mod.THRESHOLD
    limits = {
        "numeric": config.get("comparison_threshold", default) if threshold is None else threshold,
        "categorical": config.get("categorical_comparison_threshold", default)
        if categorical_threshold is None
        else categorical_threshold,
    }
    completeness = {c["name"]: c.get("completeness", 1.0) for c in constraints.get("features", [])}
    corrected = alpha / len(features)
    results = [_feature(f, window[f["name"]], limits, corrected, completeness.get(f["name"], 1.0)) for f in features]
    return Report(results, len(window), alpha, limits)


def _feature(
    feature: dict[str, Any], values: pd.Series, limits: dict[str, float], alpha: float, completeness: float
) -> FeatureDrift:
    if "numerical_statistics" in feature:
        kind, present = "numeric", pd.to_numeric(values, errors="coerce").dropna()
    else:
        kind, present = "categorical", values.dropna().astype(str)
    missing_growth = completeness - len(present) / len(values)
    if present.empty:
        return FeatureDrift(feature["name"], kind, True, "every value is missing", {"missing_growth": missing_growth})
    metrics, effect, p_value, unseen = (
        _numeric(feature, present.to_numpy(dtype=float)) if kind == "numeric" else _categorical(feature, present)
    )
    metrics["missing_growth"] = missing_growth
    limit = limits[kind]
    name = "KS D" if kind == "numeric" else "Jensen-Shannon distance"
    if missing_growth > limit:
        reason = f"missing values grew by {missing_growth:.3f}"
        return FeatureDrift(feature["name"], kind, True, reason, metrics, unseen)
    drifted = p_value < alpha and effect >= limit
    reason = (
        f"{name} {effect:.3f} {'>=' if effect >= limit else '<'} {limit} and p {p_value:.2g} "
        f"{'<' if p_value < alpha else '>='} {alpha:.2g}"
    )
    return FeatureDrift(feature["name"], kind, bool(drifted), reason, metrics, unseen)


def _numeric(feature: dict[str, Any], window: np.ndarray) -> tuple[dict[str, float], float, float, tuple[str, ...]]:
    numbers = feature["numerical_statistics"]
    reference = baseline_mod.sketch_sample(numbers["distribution"]["kll"]["sketch"]["data"])
    # The exact p-value costs O(n x m); beyond 100,000 pairs the asymptotic one is as good and instant.
    ks = stats.ks_2samp(reference, window, method="exact" if len(reference) * len(window) <= EXACT_PAIRS else "asymp")
    spread = numbers.get("std_dev") or 1.0
    metrics = {
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "wasserstein_std": float(stats.wasserstein_distance(reference, window) / spread),
    }
    return metrics, float(ks.statistic), float(ks.pvalue), ()


def baseline_counts(feature: dict[str, Any]) -> dict[str, float]:
    """A categorical feature's baseline counts: its buckets, and ``(other)`` for the values beyond them."""
    strings = feature["string_statistics"]
    expected = {b["value"]: float(b["count"]) for b in strings["distribution"]["categorical"]["buckets"]}
    rest = strings["common"]["num_present"] - sum(expected.values())
    if rest > 0:
        expected[OTHER] = rest
    return expected


def _categorical(feature: dict[str, Any], window: pd.Series) -> tuple[dict[str, float], float, float, tuple[str, ...]]:
    expected = baseline_counts(feature)
    observed = window.value_counts()
    unseen = tuple(sorted(set(observed.index) - set(expected)))
    categories = list(expected) + list(unseen)
    table = np.array([[expected.get(c, 0.0) for c in categories], [float(observed.get(c, 0)) for c in categories]])
    if len(categories) < 2:
        chi2, p_value = 0.0, 1.0
    else:
        result = stats.chi2_contingency(table)
        chi2, p_value = float(result.statistic), float(result.pvalue)
    shares = table / table.sum(axis=1, keepdims=True)
    metrics = {
        "chi2_statistic": chi2,
        "chi2_pvalue": p_value,
        "jensen_shannon": float(jensenshannon(shares[0], shares[1], base=2)),
        "linf": float(np.abs(shares[0] - shares[1]).max()),
    }
    return metrics, metrics["jensen_shannon"], p_value, unseen

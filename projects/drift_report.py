"""The monitor's report for people: per feature, the baseline's distribution against the
window's (``drift/report.png``), and a page with the verdict, each feature's tests and the
picture (``drift/report.html``), both logged with the ``monitor`` run.

Numeric features are drawn as densities on the same bins (the baseline from the values its KLL
sketch stands for); categorical ones as each category's share, side by side. A drifted feature's
panel says so in its title, with the reason.
"""

from __future__ import annotations

import html
import io
from typing import Any

import numpy as np
import pandas as pd

from projects import baseline as baseline_mod
from projects.drift import Report, baseline_counts

BINS = 20


def figure(statistics: dict[str, Any], window: pd.DataFrame, report: Report) -> bytes:
    """One panel a feature, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features = {f["name"]: f for f in statistics["features"]}
    count = len(report.features)
    columns = min(3, count)
    lines = -(-count // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(5 * columns, 3.4 * lines), squeeze=False)
    for axis, result in zip(axes.flat, report.features, strict=False):
        feature = features[result.feature]
        values = window[result.feature]
        if result.kind == "numeric":
            _numeric(axis, feature, pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float))
        else:
            _categorical(axis, feature, values.dropna().astype(str))
        state = "DRIFT" if result.drifted else "no drift"
        axis.set_title(
            f"{result.feature}: {state}\n{result.reason}", fontsize=8, color="firebrick" if result.drifted else "black"
        )
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[count:]:
        axis.axis("off")
    fig.suptitle(f"{report.verdict}: {report.rows} rows against the training baseline", fontsize=11)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)
    return out.getvalue()


def _numeric(axis: Any, feature: dict[str, Any], window: np.ndarray) -> None:
    reference = baseline_mod.sketch_sample(feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"])
    low = min(reference.min(), window.min()) if len(window) else reference.min()
    high = max(reference.max(), window.max()) if len(window) else reference.max()
    bins = np.linspace(low, high, BINS + 1) if high > low else BINS
    axis.hist(reference, bins=bins, density=True, alpha=0.5, label="baseline (training)")
    axis.hist(window, bins=bins, density=True, alpha=0.5, label="window")
    axis.set_ylabel("density", fontsize=7)


def _categorical(axis: Any, feature: dict[str, Any], window: pd.Series) -> None:
    expected = baseline_counts(feature)
    observed = window.value_counts()
    categories = list(expected) + sorted(set(observed.index) - set(expected))
    base = np.array([expected.get(c, 0.0) for c in categories])
    seen = np.array([float(observed.get(c, 0)) for c in categories])
    positions = np.arange(len(categories))
    axis.bar(positions - 0.2, base / max(base.sum(), 1), width=0.4, label="baseline (training)")
    axis.bar(positions + 0.2, seen / max(seen.sum(), 1), width=0.4, label="window")
    axis.set_xticks(positions, categories, fontsize=7, rotation=30)
    axis.set_ylabel("share", fontsize=7)


def page(report: Report, image: str, title: str) -> str:
    """The report as HTML: the verdict, a row a feature, and the picture (``image``, a sibling file)."""
    rows = []
    for result in report.features:
        tests = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
        mark = "DRIFT" if result.drifted else "no drift"
        rows.append(
            f"<tr class='{'drift' if result.drifted else 'ok'}'><td>{html.escape(result.feature)}</td>"
            f"<td>{result.kind}</td><td>{mark}</td><td>{html.escape(result.reason)}</td><td>{html.escape(tests)}</td></tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border-bottom:1px solid #ddd;"
        "text-align:left;font-size:13px}tr.drift td{color:#a00}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p><b>{html.escape(report.verdict)}</b>: {html.escape(report.summary())}</p>"
        f"<p>alpha {report.alpha} (Bonferroni over {len(report.features)} features); thresholds "
        f"{html.escape(str(report.thresholds))}</p>"
        "<table><tr><th>feature</th><th>kind</th><th>verdict</th><th>why</th><th>tests</th></tr>"
        + "".join(rows)
        + f"</table><p><img src='{html.escape(image)}' alt='baseline against window, per feature'></p></body></html>"
    )

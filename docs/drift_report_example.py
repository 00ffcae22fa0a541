"""Makes docs/drift-report.png, the README's example of the monitor's report: a version trained on
weeks 0-3 of the truck-delay scenario against week 7's traffic (drift from week 4).

    python docs/drift_report_example.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from projects import baseline, drift, drift_report, scenario  # noqa: E402


def main() -> None:
    training = pd.concat([scenario.week(w, 8, rows=4000, seed=1, drift_from=4) for w in range(4)])
    features = training.drop(columns=[scenario.TARGET])
    statistics = baseline.statistics(features)
    constraints = baseline.constraints(features, statistics)
    window = scenario.week(7, 8, rows=1500, seed=5, drift_from=4).drop(columns=[scenario.TARGET])
    report = drift.compare(statistics, constraints, window)
    (ROOT / "docs" / "drift-report.png").write_bytes(drift_report.figure(statistics, window, report))
    print(report.summary())


if __name__ == "__main__":
    main()

"""Drift detection against the training baseline, and what acting on it is worth, on the truck-delay
scenario with a known start of drift.

    python benchmarks/drift.py [--weeks 12] [--drift-from 6] [--seeds 1 2 3 4 5] [--rows 2000] [--family xgboost]

For each seed: the champion is trained on weeks 0-3 (``train``'s split and baseline). Weeks 0 to
``drift-from`` share one distribution; from the next week on the inputs drift (distance, stops,
planned hours, route mix), reaching the full drift in the last week. Each later week's rows are
the window ``monitor`` sees, compared with the serving model's baseline by :mod:`projects.drift`
at its default thresholds. Reported:

* false alarms: weeks 4 to ``drift-from`` (no drift) with a drift verdict (goal: none);
* detection delay: weeks from the first drifted week to the first drift verdict (0: that week);
* the serving model's ROC AUC on each week without the loop (the champion forever) and with it
  (a drift verdict on week w retrains by rehearsal on week w's rows plus the replay sample, the
  challenger is promoted when it scores at least the champion's on week w's holdout, serves from
  week w+1, and its training rows become the baseline), and their ratio;
* the monitor's cost per 10,000 captured rows: decoding them from 100 capture records (JSON and
  CSV requests, as ``monitor -P endpoint=`` reads them) plus ``drift.compare`` on the 10,000-row
  window (medians of 5), and the baseline's cost per 10,000 training rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from projects import baseline, drift, families, scenario  # noqa: E402

TARGET = scenario.TARGET


class Served:
    """A model with the baseline of the rows it was fitted on, and its replay sample."""

    def __init__(self, model, rows: pd.DataFrame, seed: int) -> None:
        features = rows.drop(columns=[TARGET])
        self.model, self.statistics = model, baseline.statistics(features)
        self.constraints = baseline.constraints(features, self.statistics)
        self.replay = families.stratified_sample(rows, TARGET, 5000, seed, "binary")

    def score(self, rows: pd.DataFrame) -> float:
        return families.score("binary", self.model, rows.drop(columns=[TARGET]), rows[TARGET])["score"]


def week(index: int, args: argparse.Namespace, seed: int) -> pd.DataFrame:
    return scenario.week(index, args.weeks, args.rows, seed, drift_from=args.drift_from)


def retrain(served: Served, rows: pd.DataFrame, args: argparse.Namespace, seed: int) -> tuple[Served, pd.DataFrame]:
    """Rehearsal, as ``retrain`` does it: the update on the week's rows plus a replay sample."""
    fit_rows, holdout = train_test_split(rows, test_size=0.2, random_state=seed, stratify=rows[TARGET])
    replay = families.stratified_sample(served.replay, TARGET, len(fit_rows) // 2, seed, "binary")
    both = pd.concat([fit_rows, replay], ignore_index=True).sample(frac=1.0, random_state=seed)
    features = both.drop(columns=[TARGET])
    if families.unseen_categories(served.model, features):
        model = families.build(args.family, "binary", features, seed=seed).fit(features, both[TARGET])
    else:
        model = families.incremental(served.model, features, both[TARGET], 100)
    return Served(model, both, seed), holdout


def one_seed(args: argparse.Namespace, seed: int) -> dict:
    training = pd.concat([week(i, args, seed) for i in range(4)], ignore_index=True)
    train, _ = train_test_split(training, test_size=0.2, random_state=seed, stratify=training[TARGET])
    features = train.drop(columns=[TARGET])
    champion = Served(
        families.build(args.family, "binary", features, seed=seed).fit(features, train[TARGET]), train, seed
    )
    serving, alarms, detected, without, with_loop, retrains = champion, [], None, {}, {}, 0
    for index in range(4, args.weeks):
        rows = week(index, args, seed + 1000)  # the traffic: rows the training never saw
        without[index], with_loop[index] = champion.score(rows), serving.score(rows)
        report = drift.compare(serving.statistics, serving.constraints, rows.drop(columns=[TARGET]))
        if report.verdict != "drift":
            continue
        if index <= args.drift_from:
            alarms.append(index)
        elif detected is None:
            detected = index
        challenger, holdout = retrain(serving, rows, args, seed)
        retrains += 1
        if challenger.score(holdout) >= serving.score(holdout):
            serving = challenger
    first_drifted = args.drift_from + 1
    return {
        "seed": seed,
        "false_alarms": alarms,
        "delay": None if detected is None else detected - first_drifted,
        "without": without,
        "with": with_loop,
        "retrains": retrains,
    }


def decode_cost(args: argparse.Namespace) -> float:
    """Seconds to decode 10,000 captured rows (100 requests of 100 rows, JSON and CSV by turns) into
    the window's frame, as ``monitor -P endpoint=...`` does (:func:`projects.capture.rows`, the
    serving runtime's codec against the model's signature); reading the records from S3 is not in it."""
    import json
    import tempfile

    import mlflow.sklearn
    from mlflow.models import infer_signature

    from projects import capture, tracking

    rows = pd.concat([week(i, args, 3) for i in range(4)], ignore_index=True)
    features = rows.drop(columns=[TARGET])
    model = families.build("sgd", "binary", features, seed=0).fit(features, rows[TARGET])
    window = pd.concat([week(args.weeks - 1, args, 4)] * 10, ignore_index=True).drop(columns=[TARGET]).head(10_000)
    records = []
    for number, start in enumerate(range(0, 10_000, 100)):
        chunk = window.iloc[start : start + 100]
        if number % 2:
            sent = {"observedContentType": "text/csv", "encoding": "CSV", "data": chunk.to_csv(index=False)}
        else:
            body = json.dumps({"dataframe_split": json.loads(chunk.to_json(orient="split", index=False))})
            sent = {"observedContentType": "application/json", "encoding": "JSON", "data": body}
        records.append({"captureData": {"endpointInput": sent}})
    with tempfile.TemporaryDirectory() as scratch:
        path = f"{scratch}/model"
        mlflow.sklearn.save_model(
            model,
            path,
            signature=infer_signature(features, model.predict(features)),
            skops_trusted_types=tracking.trusted_types(model),  # the project's own pipeline, as train saves it
            pip_requirements=["mlflow"],  # not served: no requirement inference
        )
        times = []
        for _ in range(5):
            started = time.perf_counter()
            decoded = capture.rows(iter(records), path)
            times.append(time.perf_counter() - started)
        assert len(decoded) == 10_000
    return statistics.median(times)


def cost(args: argparse.Namespace) -> tuple[float, float]:
    rows = pd.concat([week(i, args, 1) for i in range(5)], ignore_index=True).head(10_000)
    features = rows.drop(columns=[TARGET])
    times, base = [], []
    for _ in range(5):
        started = time.perf_counter()
        stats = baseline.statistics(features)
        constraints = baseline.constraints(features, stats)
        base.append(time.perf_counter() - started)
        window = week(args.weeks - 1, args, 2).head(10_000)
        window = pd.concat([window] * (10_000 // len(window) + 1), ignore_index=True).head(10_000)
        started = time.perf_counter()
        drift.compare(stats, constraints, window.drop(columns=[TARGET]))
        times.append(time.perf_counter() - started)
    return statistics.median(times), statistics.median(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--drift-from", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--family", default="xgboost", choices=families.FAMILIES)
    args = parser.parse_args()
    results = [one_seed(args, seed) for seed in args.seeds]
    print(
        f"weeks {args.weeks}, drift from week {args.drift_from + 1} on, {args.rows} rows a week, {args.family}, "
        f"seeds {args.seeds}, thresholds: KS D and Jensen-Shannon 0.1, alpha {drift.ALPHA} (Bonferroni)"
    )
    for r in results:
        print(
            f"  seed {r['seed']}: false alarms {r['false_alarms'] or 'none'}; detection delay "
            f"{'not detected' if r['delay'] is None else str(r['delay']) + ' weeks'}; retrains {r['retrains']}"
        )
    delays = [r["delay"] for r in results if r["delay"] is not None]
    print(
        f"false alarms: {sum(len(r['false_alarms']) for r in results)} in "
        f"{len(results) * (args.drift_from - 3)} undrifted weeks (goal: 0)"
    )
    print(
        f"detection delay: median {statistics.median(delays) if delays else 'n/a'} weeks, max "
        f"{max(delays) if delays else 'n/a'}; detected in {len(delays)} of {len(results)} seeds"
    )
    print("ROC AUC of the serving model, mean over seeds (without the loop | with it | ratio):")
    for index in range(4, args.weeks):
        without = statistics.mean(r["without"][index] for r in results)
        with_loop = statistics.mean(r["with"][index] for r in results)
        marker = "" if index <= args.drift_from else "  (drifted)"
        print(f"  week {index:2d}: {without:.4f} | {with_loop:.4f} | {with_loop / without:.3f}x{marker}")
    drifted = range(args.drift_from + 1, args.weeks)
    ratio = statistics.mean(
        statistics.mean(r["with"][i] for r in results) / statistics.mean(r["without"][i] for r in results)
        for i in drifted
    )
    print(f"drifted weeks: with the loop / without = {ratio:.3f}x (mean of the weekly ratios)")
    compare_seconds, baseline_seconds = cost(args)
    decode_seconds = decode_cost(args)
    print(
        f"monitor cost per 10,000 captured rows: {(decode_seconds + compare_seconds) * 1000:.0f} ms = decoding "
        f"100 captured requests {decode_seconds * 1000:.0f} ms + drift.compare {compare_seconds * 1000:.0f} ms "
        f"(medians of 5; reading the capture from S3 not included); baseline per 10,000 training rows: "
        f"{baseline_seconds * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()

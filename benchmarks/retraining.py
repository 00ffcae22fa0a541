"""Full, incremental and rehearsal retraining side by side on the drifting truck-delay scenario.

    python benchmarks/retraining.py [--family xgboost] [--rows 4000] [--repeats 3]

For each drift step k (4 to 7 of an 8-week scenario): the parent is trained from scratch on weeks
0..k-1 (80% of each, the rest is the old-data holdout), then updated with week k (80%; the rest
is the new-data holdout) three ways, with the same code the ``retrain`` entry point runs:

* full: from scratch on the parent's training rows plus the new rows;
* incremental: the parent updated on the new rows only (``n_more`` rounds, trees or epochs);
* rehearsal: the same update on the new rows plus a stratified replay sample of the parent's
  training rows (``replay_fraction`` times as many; the sample ``train`` keeps, 5000 rows).

Reported per strategy, averaged over the steps: fitting time (median of ``--repeats``), ROC AUC on
old and new holdouts, their mean, and forgetting (parent minus child on old data); then rehearsal
against full as ratios. Goal: rehearsal keeps at least 99% of full's mean score in at most 40% of
its time.
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

from projects import families, scenario  # noqa: E402

TARGET = scenario.TARGET


def split(frame: pd.DataFrame, seed: int):
    return train_test_split(frame, test_size=0.2, random_state=seed, stratify=frame[TARGET])


def timed(fit, repeats: int):
    times, model = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - started)
    return model, statistics.median(times)


def step(k: int, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    weeks = [split(scenario.week(i, 8, args.rows, seed=args.seed), args.seed) for i in range(k + 1)]
    old_train = pd.concat([w[0] for w in weeks[:k]], ignore_index=True)
    old_test = pd.concat([w[1] for w in weeks[:k]], ignore_index=True)
    new_train, new_test = weeks[k]
    x_old = old_train.drop(columns=[TARGET])
    parent = families.build(args.family, "binary", x_old, seed=args.seed).fit(x_old, old_train[TARGET])
    sample = families.stratified_sample(old_train, TARGET, 5000, args.seed, "binary")
    replay = families.stratified_sample(sample, TARGET, int(len(new_train) * args.replay_fraction), args.seed, "binary")
    rehearsal_rows = pd.concat([new_train, replay], ignore_index=True).sample(frac=1.0, random_state=args.seed)
    full_rows = pd.concat([old_train, new_train], ignore_index=True)

    def update(rows):
        return lambda: families.incremental(parent, rows.drop(columns=[TARGET]), rows[TARGET], args.n_more)

    fits = {
        "full": lambda: families.build(args.family, "binary", full_rows.drop(columns=[TARGET]), seed=args.seed).fit(
            full_rows.drop(columns=[TARGET]), full_rows[TARGET]
        ),
        "incremental": update(new_train),
        "rehearsal": update(rehearsal_rows),
    }

    def auc(model, frame):
        return families.score("binary", model, frame.drop(columns=[TARGET]), frame[TARGET])["score"]

    parent_old = auc(parent, old_test)
    results = {}
    for name, fit in fits.items():
        model, seconds = timed(fit, args.repeats)
        old, new = auc(model, old_test), auc(model, new_test)
        results[name] = {
            "seconds": seconds,
            "old": old,
            "new": new,
            "mean": (old + new) / 2,
            "forgetting": parent_old - old,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="xgboost", choices=families.FAMILIES)
    parser.add_argument("--rows", type=int, default=4000, help="deliveries per week")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-more", type=int, default=100)
    parser.add_argument("--replay-fraction", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    steps = [step(k, args) for k in range(4, 8)]
    names = ("full", "incremental", "rehearsal")
    mean = {n: {m: statistics.mean(s[n][m] for s in steps) for m in steps[0][n]} for n in names}
    print(
        f"{args.family}, {args.rows} deliveries per week, drift steps 4-7 of 8, n_more={args.n_more}, "
        f"replay_fraction={args.replay_fraction}"
    )
    print(f"{'strategy':<12} {'fit s':>8} {'old AUC':>8} {'new AUC':>8} {'mean':>8} {'forgetting':>11}")
    for n in names:
        r = mean[n]
        print(
            f"{n:<12} {r['seconds']:>8.3f} {r['old']:>8.4f} {r['new']:>8.4f} {r['mean']:>8.4f} {r['forgetting']:>+11.4f}"
        )
    keep = mean["rehearsal"]["mean"] / mean["full"]["mean"]
    time_share = mean["rehearsal"]["seconds"] / mean["full"]["seconds"]
    print(f"rehearsal / full: {keep:.2%} of the mean score (goal >= 99%) in {time_share:.0%} of the time (goal <= 40%)")
    print(
        f"incremental forgetting {mean['incremental']['forgetting']:+.4f} vs rehearsal {mean['rehearsal']['forgetting']:+.4f}"
    )


if __name__ == "__main__":
    main()

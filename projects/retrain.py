"""``mlflow run . -e retrain``: a new version from a registered one and new data.

Strategies:

* ``incremental``: the parent model updated on the new data only, by its family's own mechanism
  (xgboost training continuation, SGD ``partial_fit``, HistGradientBoosting and RandomForest
  ``warm_start``; see ``projects/families.py``). Its preprocessing stays as fitted; categories it
  never saw follow ``on_unseen_category`` (``error`` by default, or ``ignore``).
* ``rehearsal``: the same update, on the new data plus a stratified replay sample of the parent's
  training data (``replay/train_sample.parquet`` of the parent's run), ``replay_fraction`` times
  as many rows as the new training data (capped by the sample). It keeps what the parent knew
  while learning the new weeks. When the new data has categories the parent never saw, the
  pipeline is refitted from scratch on the same rows instead, so it learns them.
* ``full``: a new model of the same family, from scratch, on the parent's training split (re-read
  from the source its run recorded, split with its test size and seed) plus the new data. For a
  parent that was itself retrained, that source is the data of its own retraining only.

Logged: ``parent.*`` tags (registered model, version, run id), the parent's data and the new data
as dataset inputs, and metrics on the old-data holdout (the parent's test split) and the new-data
holdout: ``old_score``, ``new_score``, ``parent_old_score``, ``parent_new_score``, ``forgetting``
(parent minus child on old data) and ``train_seconds``; and the baseline of the rows the new
version was fitted on (``baseline/statistics.json``, ``baseline/constraints.json``), which
``monitor`` compares the new version's traffic with.
"""

from __future__ import annotations

import argparse
import time

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split

from projects import baseline, cli, families, tracking
from projects import data as data_mod
from projects import train as train_mod

STRATEGIES = ("incremental", "rehearsal", "full")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m projects.retrain", description=__doc__.splitlines()[0])
    p.add_argument("--base-model", required=True, help="models:/name@alias, models:/name/Stage or models:/name/N")
    p.add_argument(
        "--new-data",
        default="scenario:truck-delay?weeks=4",
        help="CSV/Parquet path or glob, s3://..., sklearn:NAME or scenario:...",
    )
    p.add_argument("--strategy", default="rehearsal", choices=STRATEGIES)
    p.add_argument("--replay-fraction", type=float, default=0.5, help="rehearsal: replay rows per new training row")
    p.add_argument("--n-more", type=int, default=100, help="boosting rounds, trees, iterations or epochs added")
    p.add_argument("--on-unseen-category", default="error", choices=families.UNSEEN_POLICIES)
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--registered-model", default="", help="register under this name (default: the parent's)")
    return p


def run(args: argparse.Namespace) -> str:
    parent = tracking.resolve(args.base_model)
    parent_run = mlflow.get_run(parent.run_id)
    parent_settings = tracking.settings_of(parent_run)
    target, task, family = (parent_settings[k] for k in ("target", "task", "family"))
    parent_model = mlflow.sklearn.load_model(f"models:/{parent.name}/{parent.version}")
    new = data_mod.load(args.new_data, target)
    new_train, new_test = train_test_split(
        new.frame,
        test_size=args.test_size,
        random_state=args.seed,
        stratify=new.label if task != "regression" else None,
    )
    old_test = tracking.load_frame(parent.run_id, "holdout/holdout.parquet")
    rows = _training_rows(args, parent_run, new_train, target, task)
    with mlflow.start_run() as active:
        mlflow.set_tags(
            {
                "project.entry_point": "retrain",
                "parent.registered_model": parent.name,
                "parent.version": str(parent.version),
                "parent.run_id": parent.run_id,
                "retrain.strategy": args.strategy,
            }
        )
        tracking.record_settings(
            data=args.new_data, target=target, task=task, family=family, test_size=args.test_size, seed=args.seed
        )
        tracking.log_params(
            {
                "base_model": args.base_model,
                "new_data": args.new_data,
                "strategy": args.strategy,
                "replay_fraction": args.replay_fraction,
                "n_more": args.n_more,
                "family": family,
                "task": task,
                "target": target,
                "seed": args.seed,
                "on_unseen_category": args.on_unseen_category,
                "train_rows": len(rows),
            }
        )
        tracking.log_dataset(
            old_test,
            parent_settings["data"],
            target,
            "parent-holdout",
            "evaluation",
            parent_version=str(parent.version),
        )
        tracking.log_dataset(new_train, args.new_data, target, "new-train", "training")
        started = time.perf_counter()
        child = _update(args, parent_model, rows, target, task, family)
        seconds = time.perf_counter() - started
        metrics = _compare(task, parent_model, child, old_test, new_test, target)
        mlflow.log_metrics({**metrics, "train_seconds": seconds})
        baseline.log(rows.drop(columns=[target]))
        tracking.log_frame(pd.concat([old_test, new_test], ignore_index=True), "holdout/holdout.parquet")
        tracking.log_frame(
            families.stratified_sample(rows, target, 5000, args.seed, task), "replay/train_sample.parquet"
        )
        name = args.registered_model or parent.name
        info = tracking.log_pipeline(child, rows.drop(columns=[target]), name)
        print(
            f"retrain ({args.strategy}): {name} version {info.registered_model_version} "
            f"from version {parent.version}; "
            f"old {metrics['old_score']:.4f} new {metrics['new_score']:.4f} forgetting {metrics['forgetting']:+.4f} "
            f"in {seconds:.2f} s"
        )
        return active.info.run_id


def _training_rows(
    args: argparse.Namespace, parent_run, new_train: pd.DataFrame, target: str, task: str
) -> pd.DataFrame:
    if args.strategy == "incremental":
        return new_train
    if args.strategy == "rehearsal":
        sample = tracking.load_frame(parent_run.info.run_id, "replay/train_sample.parquet")
        replay = families.stratified_sample(sample, target, int(len(new_train) * args.replay_fraction), args.seed, task)
        return pd.concat([new_train, replay], ignore_index=True).sample(frac=1.0, random_state=args.seed)
    # The parent's training split, re-read from the source its run recorded and split as it was
    # (same test size and seed), so its holdout stays out of training.
    settings = tracking.settings_of(parent_run)
    old = data_mod.load(settings["data"], target)
    old_train, _ = train_mod.split(old, float(settings["test_size"] or 0.2), int(settings["seed"] or 0), task)
    return pd.concat([old_train, new_train], ignore_index=True)


def _update(args: argparse.Namespace, parent_model, rows: pd.DataFrame, target: str, task: str, family: str):
    features, label = rows.drop(columns=[target]), rows[target]
    if args.strategy == "full" or (args.strategy == "rehearsal" and families.unseen_categories(parent_model, features)):
        params = {
            k: v
            for k, v in parent_model.named_steps["model"].get_params().items()
            if k in ("max_depth", "learning_rate")
        }
        return families.build(family, task, features, params, args.seed).fit(features, label)
    return families.incremental(parent_model, features, label, args.n_more, args.on_unseen_category)


def _compare(task: str, parent, child, old_test: pd.DataFrame, new_test: pd.DataFrame, target: str) -> dict[str, float]:
    def score(model, frame):
        return families.score(task, model, frame.drop(columns=[target]), frame[target])["score"]

    old, new = score(child, old_test), score(child, new_test)
    parent_old, parent_new = score(parent, old_test), score(parent, new_test)
    return {
        "old_score": old,
        "new_score": new,
        "parent_old_score": parent_old,
        "parent_new_score": parent_new,
        "forgetting": parent_old - old,
        "mean_score": (old + new) / 2,
    }


def main(argv: list[str] | None = None) -> None:
    cli.main(parser(), run, argv)


if __name__ == "__main__":
    main()

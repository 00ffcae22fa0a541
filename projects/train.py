"""``mlflow run . -e train``: fit one model family on the data and log everything a later step needs.

Logs: parameters; test metrics (``test_score`` and the task's others) and ``train_seconds``; the
model with its signature and input example (registered as ``registered_model`` when given); the
training and test sets as dataset inputs; and two artifacts that ``retrain`` and ``evaluate`` use:
``holdout/holdout.parquet`` (the test split) and ``replay/train_sample.parquet`` (a stratified
sample of the training split, up to ``replay_rows`` rows, for rehearsal); and the training
features' baseline in SageMaker Model Monitor's formats, ``baseline/statistics.json`` and
``baseline/constraints.json`` (:mod:`projects.baseline`), which ``monitor`` compares traffic with.
"""

from __future__ import annotations

import argparse
import json
import time

import mlflow
from sklearn.model_selection import train_test_split

from projects import baseline, cli, families, tracking
from projects import data as data_mod


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m projects.train", description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", default=data_mod.DEFAULT, help="CSV/Parquet path or glob, s3://..., sklearn:NAME or scenario:..."
    )
    p.add_argument(
        "--target",
        default="",
        help="the label column (default: the source's own: target for sklearn:NAME, delayed for the scenario)",
    )
    p.add_argument("--family", default="xgboost", choices=families.FAMILIES)
    p.add_argument("--params", default="{}", help='JSON of estimator parameters, e.g. {"max_depth": 4}')
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--registered-model", default="", help="register the model under this name")
    p.add_argument("--replay-rows", type=int, default=5000, help="rows kept in the replay sample for rehearsal")
    return p


def split(dataset: data_mod.Dataset, test_size: float, seed: int, task: str):
    stratify = dataset.label if task != "regression" else None
    return train_test_split(dataset.frame, test_size=test_size, random_state=seed, stratify=stratify)


def fit(family: str, task: str, train, target: str, params: dict, seed: int):
    pipeline = families.build(family, task, train.drop(columns=[target]), params, seed)
    started = time.perf_counter()
    pipeline.fit(train.drop(columns=[target]), train[target])
    return pipeline, time.perf_counter() - started


def run(args: argparse.Namespace) -> str:
    dataset = data_mod.load(args.data, args.target)
    target = dataset.target
    params = json.loads(args.params)
    task = families.task_of(dataset.label)
    train, test = split(dataset, args.test_size, args.seed, task)
    with mlflow.start_run() as active:
        mlflow.set_tag("project.entry_point", "train")
        tracking.record_settings(
            data=args.data, target=target, task=task, family=args.family, test_size=args.test_size, seed=args.seed
        )
        tracking.log_params(
            {
                "data": args.data,
                "target": target,
                "family": args.family,
                "task": task,
                "test_size": args.test_size,
                "seed": args.seed,
                "rows": len(dataset.frame),
                **{f"model.{k}": v for k, v in params.items()},
            }
        )
        pipeline, seconds = fit(args.family, task, train, target, params, args.seed)
        scores = families.score(task, pipeline, test.drop(columns=[target]), test[target])
        mlflow.log_metrics({**{f"test_{k}": v for k, v in scores.items()}, "train_seconds": seconds})
        tracking.log_dataset(train, args.data, target, "train", "training")
        tracking.log_dataset(test, args.data, target, "holdout", "evaluation")
        baseline.log(train.drop(columns=[target]))
        tracking.log_frame(test, "holdout/holdout.parquet")
        tracking.log_frame(
            families.stratified_sample(train, target, args.replay_rows, args.seed, task), "replay/train_sample.parquet"
        )
        info = tracking.log_pipeline(pipeline, train.drop(columns=[target]), args.registered_model)
        version = (
            f", registered {args.registered_model} version {info.registered_model_version}"
            if args.registered_model
            else ""
        )
        print(
            f"train: {args.family} on {len(train)} rows, test_score {scores['score']:.4f}, "
            f"run {active.info.run_id}{version}"
        )
        return active.info.run_id


def main(argv: list[str] | None = None) -> None:
    cli.main(parser(), run, argv)


if __name__ == "__main__":
    main()

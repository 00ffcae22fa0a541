"""``mlflow run . -e tune``: an Optuna study, one nested MLflow run per trial, then the best
trial's parameters retrained and registered.

* The search space depends on the family (``SPACES``). Trials are scored on a validation split of
  the training data; the test split stays untouched until the best model is logged.
* xgboost trials report the validation metric every ``report_every`` boosting rounds, and Optuna's
  median pruner stops the unpromising ones; their runs end KILLED with ``optuna.state=PRUNED``.
* Storage is ``sqlite:///optuna.db`` (in the working directory) by default. With
  ``storage=postgresql+psycopg2://...``, ``n_workers`` threads, or separate ``mlflow run``
  invocations with the same ``study_name``, share one study. Workers that start together on a
  fresh database are safe: the storage's tables are created under a lock (:mod:`.study_storage`).
* The parent run logs what ``train`` logs for the best model, the training features' baseline
  (``baseline/statistics.json``, ``baseline/constraints.json``) included.
* Trial runs are nested under the parent run (``mlflow.parentRunId``) and written by a background
  thread when each trial ends (:mod:`projects.trial_runs`: three REST calls per trial).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import mlflow
import optuna
from sklearn.model_selection import train_test_split

from projects import baseline, cli, families, study_storage, tracking, trial_runs
from projects import data as data_mod
from projects import train as train_mod

SPACES = {
    "xgboost": lambda t: {
        "max_depth": t.suggest_int("max_depth", 2, 8),
        "learning_rate": t.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "subsample": t.suggest_float("subsample", 0.6, 1.0),
        "min_child_weight": t.suggest_float("min_child_weight", 0.5, 10, log=True),
    },
    "sgd": lambda t: {
        "alpha": t.suggest_float("alpha", 1e-6, 1e-2, log=True),
        "penalty": t.suggest_categorical("penalty", ["l2", "l1", "elasticnet"]),
    },
    "hgb": lambda t: {
        "learning_rate": t.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_leaf_nodes": t.suggest_int("max_leaf_nodes", 8, 64, log=True),
        "l2_regularization": t.suggest_float("l2_regularization", 1e-4, 1.0, log=True),
    },
    "rf": lambda t: {
        "max_depth": t.suggest_int("max_depth", 3, 20),
        "min_samples_leaf": t.suggest_int("min_samples_leaf", 1, 20),
        "max_features": t.suggest_float("max_features", 0.2, 1.0),
    },
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m projects.tune", description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", default=data_mod.DEFAULT, help="CSV/Parquet path or glob, s3://..., sklearn:NAME or scenario:..."
    )
    p.add_argument(
        "--target",
        default="",
        help="the label column (default: the source's own: target for sklearn:NAME, delayed for the scenario)",
    )
    p.add_argument("--family", default="xgboost", choices=families.FAMILIES)
    p.add_argument("--n-trials", type=int, default=20, help="trials this invocation runs (over all its workers)")
    p.add_argument("--n-workers", type=int, default=1, help="threads running trials of the study at once")
    p.add_argument("--study-name", default="truck-delay")
    p.add_argument(
        "--storage", default="sqlite:///optuna.db", help="Optuna storage URL (sqlite or postgresql+psycopg2)"
    )
    p.add_argument("--report-every", type=int, default=10, help="xgboost: boosting rounds between pruning checks")
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--registered-model", default="", help="register the best model under this name")
    return p


class Objective:
    """One trial: fit on the training split, score on the validation split; with ``parent_run_id``
    each trial is a nested MLflow run (without it, Optuna alone: the benchmark's baseline).

    A trial's run is written when the trial ends, by one background thread (create the run with
    its start time and tags, one batch of params and metrics, then its end: :mod:`.trial_runs`),
    so the next trial does not wait on the tracking server. :meth:`flush` waits for every write; a
    write that failed raises there.
    """

    def __init__(
        self,
        family: str,
        task: str,
        train,
        valid,
        target: str,
        seed: int,
        report_every: int,
        experiment_id: str | None = None,
        parent_run_id: str | None = None,
        workers: int = 1,
    ) -> None:
        self.family, self.task, self.target, self.seed, self.report_every = family, task, target, seed, report_every
        self.train_x, self.train_y = train.drop(columns=[target]), train[target]
        self.valid_x, self.valid_y = valid.drop(columns=[target]), valid[target]
        self.experiment_id, self.parent_run_id = experiment_id, parent_run_id
        self.runs = trial_runs.for_tracking_uri() if parent_run_id else None
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-runs") if parent_run_id else None
        self.writes: list[Future] = []
        # Threads of one trial: the cores shared among the workers (xgboost and rf use threads).
        self.threads = max(1, (os.cpu_count() or 1) // max(workers, 1))

    def __call__(self, trial: optuna.Trial) -> float:
        params = SPACES[self.family](trial)
        started = int(time.time() * 1000)
        try:
            value = self._fit_and_score(trial, params)
        except optuna.TrialPruned:
            self._record(trial, params, started, "KILLED", "PRUNED", {})
            raise
        except Exception:
            self._record(trial, params, started, "FAILED", "FAIL", {})
            raise
        self._record(trial, params, started, "FINISHED", "COMPLETE", {"val_score": value})
        return value

    def _fit_and_score(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        threaded = {"n_jobs": self.threads} if self.family in ("xgboost", "rf") else {}
        pipeline = families.build(self.family, self.task, self.train_x, {**params, **threaded}, self.seed)
        if self.family != "xgboost":
            pipeline.fit(self.train_x, self.train_y)
            return families.score(self.task, pipeline, self.valid_x, self.valid_y)["score"]
        prep, model = pipeline.named_steps["prep"], pipeline.named_steps["model"]
        train_x = prep.fit_transform(self.train_x)
        valid_x = prep.transform(self.valid_x)
        metric = {"binary": "auc", "multiclass": "merror", "regression": "rmse"}[self.task]
        sign = 1.0 if metric == "auc" else -1.0  # the study maximizes
        model.set_params(eval_metric=metric, callbacks=[_Reporter(trial, metric, sign, self.report_every)])
        model.fit(train_x, self.train_y, eval_set=[(valid_x, self.valid_y)], verbose=False)
        model.set_params(callbacks=None)
        return families.score(self.task, pipeline, self.valid_x, self.valid_y)["score"]

    def _record(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        started: int,
        status: str,
        state: str,
        metrics: dict[str, float],
    ) -> None:
        if self.writer is None:
            return
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            "optuna.trial": str(trial.number),
            "optuna.study": trial.study.study_name,
            "optuna.state": state,
            "project.entry_point": "tune",
        }
        ended = int(time.time() * 1000)  # now, not when the writer gets to it
        self.writes.append(
            self.writer.submit(
                self.runs.write,
                self.experiment_id,
                f"trial-{trial.number}",
                started,
                ended,
                status,
                tags,
                params,
                metrics,
            )
        )

    def flush(self) -> None:
        """Wait for every trial's run to be written; raise the first failure."""
        for write in self.writes:
            write.result()
        self.writes.clear()


class _Reporter:
    """An xgboost callback that reports the validation metric to Optuna and prunes."""

    def __new__(cls, trial: optuna.Trial, metric: str, sign: float, every: int):
        import xgboost

        class Reporter(xgboost.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                if (epoch + 1) % every:
                    return False
                trial.report(sign * evals_log["validation_0"][metric][-1], epoch + 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at round {epoch + 1}")
                return False

        return Reporter()


def study(name: str, storage: str, seed: int) -> optuna.Study:
    return optuna.create_study(
        study_name=name,
        storage=study_storage.open_storage(storage),
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=20),
    )


def run(args: argparse.Namespace) -> str:
    dataset = data_mod.load(args.data, args.target)
    target = dataset.target
    task = families.task_of(dataset.label)
    train, test = train_mod.split(dataset, args.test_size, args.seed, task)
    fit_part, valid = train_test_split(
        train, test_size=0.25, random_state=args.seed, stratify=train[target] if task != "regression" else None
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    the_study = study(args.study_name, args.storage, args.seed)
    with mlflow.start_run() as parent:
        mlflow.set_tags({"project.entry_point": "tune", "optuna.study": args.study_name})
        tracking.record_settings(
            data=args.data, target=target, task=task, family=args.family, test_size=args.test_size, seed=args.seed
        )
        tracking.log_params(
            {
                "data": args.data,
                "target": target,
                "family": args.family,
                "task": task,
                "n_trials": args.n_trials,
                "n_workers": args.n_workers,
                "study_name": args.study_name,
                "storage": _redacted(args.storage),
                "test_size": args.test_size,
                "seed": args.seed,
            }
        )
        objective = Objective(
            args.family,
            task,
            fit_part,
            valid,
            target,
            args.seed,
            args.report_every,
            parent.info.experiment_id,
            parent.info.run_id,
            args.n_workers,
        )
        started = time.perf_counter()
        try:
            the_study.optimize(objective, n_trials=args.n_trials, n_jobs=args.n_workers, catch=())
        finally:
            objective.flush()
        seconds = time.perf_counter() - started
        states = [t.state for t in the_study.trials]
        best = the_study.best_trial
        mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
        pipeline, _ = train_mod.fit(args.family, task, train, target, best.params, args.seed)
        scores = families.score(task, pipeline, test.drop(columns=[target]), test[target])
        mlflow.log_metrics(
            {
                "best_val_score": best.value,
                **{f"test_{k}": v for k, v in scores.items()},
                "trials_complete": states.count(optuna.trial.TrialState.COMPLETE),
                "trials_pruned": states.count(optuna.trial.TrialState.PRUNED),
                "tune_seconds": seconds,
            }
        )
        mlflow.log_dict({"best_trial": best.number, "params": best.params, "value": best.value}, "best_trial.json")
        tracking.log_dataset(train, args.data, target, "train", "training")
        baseline.log(train.drop(columns=[target]))
        tracking.log_frame(test, "holdout/holdout.parquet")
        tracking.log_frame(
            families.stratified_sample(train, target, 5000, args.seed, task), "replay/train_sample.parquet"
        )
        info = tracking.log_pipeline(pipeline, train.drop(columns=[target]), args.registered_model)
        print(
            f"tune: {len(the_study.trials)} trials in study {args.study_name} "
            f"({states.count(optuna.trial.TrialState.PRUNED)} pruned); best #{best.number} val {best.value:.4f}: "
            f"{json.dumps(best.params)}; test_score {scores['score']:.4f}"
            + (
                f"; registered {args.registered_model} version {info.registered_model_version}"
                if args.registered_model
                else ""
            )
        )
        return parent.info.run_id


def _redacted(storage: str) -> str:
    """The storage URL without a password."""
    scheme, sep, rest = storage.partition("://")
    if "@" not in rest:
        return storage
    credentials, _, host = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.split(':')[0]}:***@{host}"


def main(argv: list[str] | None = None) -> None:
    cli.main(parser(), run, argv)


if __name__ == "__main__":
    main()

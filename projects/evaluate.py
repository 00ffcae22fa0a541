"""``mlflow run . -e evaluate``: a challenger version against the champion, on one holdout.

The holdout is ``data`` when given, else the challenger's own ``holdout/holdout.parquet``. The
challenger passes when its score is at least ``min_score`` and no more than ``max_regression``
below the champion's (with no champion, only ``min_score`` applies). The verdict is written as
tags on the challenger's model version (``evaluation.verdict`` pass/fail, ``evaluation.reason``,
the two scores, the metric, the champion version, and the evaluation run), so the MLflow UI shows
it. With ``promote_to`` (``@alias`` or a stage: Staging, Production), a passing challenger is
promoted there; a stage transition archives the versions that were in it.
"""

from __future__ import annotations

import argparse

import mlflow
import pandas as pd

from projects import cli, families, tracking
from projects import data as data_mod

STAGES = ("Staging", "Production", "Archived", "None")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m projects.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--challenger", required=True, help="models:/name/N or models:/name@alias")
    p.add_argument("--champion", default="", help="models:/name@champion or models:/name/Production; empty: none")
    p.add_argument("--data", default="", help="holdout data; default: the challenger's holdout artifact")
    p.add_argument("--min-score", type=float, default=0.0)
    p.add_argument(
        "--max-regression", type=float, default=0.0, help="how far below the champion the challenger may score"
    )
    p.add_argument("--promote-to", default="", help="@alias or stage to set when the challenger passes")
    return p


def verdict(challenger: float, champion: float | None, min_score: float, max_regression: float) -> tuple[bool, str]:
    if challenger < min_score:
        return False, f"score {challenger:.4f} is below min_score {min_score:.4f}"
    if champion is not None and challenger < champion - max_regression:
        return False, f"score {challenger:.4f} is more than {max_regression:.4f} below the champion's {champion:.4f}"
    return True, "passes" + ("" if champion is None else f" against the champion's {champion:.4f}")


def run(args: argparse.Namespace) -> bool:
    if args.promote_to and not args.promote_to.startswith("@") and args.promote_to not in STAGES:
        raise ValueError(
            f"promote_to={args.promote_to!r} is not valid. Allowed: @<alias> or one of {', '.join(STAGES)}."
        )
    challenger = tracking.resolve(args.challenger)
    champion = _champion(args.champion)
    settings = tracking.settings_of(mlflow.get_run(challenger.run_id))
    target, task = settings["target"], settings["task"]
    holdout = (
        data_mod.load(args.data, target).frame
        if args.data
        else tracking.load_frame(challenger.run_id, "holdout/holdout.parquet")
    )
    score = _scorer(task, holdout, target)
    challenger_score = score(f"models:/{challenger.name}/{challenger.version}")
    champion_score = score(f"models:/{champion.name}/{champion.version}") if champion else None
    passed, reason = verdict(challenger_score, champion_score, args.min_score, args.max_regression)
    client = mlflow.MlflowClient()
    with mlflow.start_run() as active:
        mlflow.set_tag("project.entry_point", "evaluate")
        tracking.log_params(
            {
                "challenger": args.challenger,
                "champion": args.champion or "none",
                "min_score": args.min_score,
                "max_regression": args.max_regression,
                "promote_to": args.promote_to or "none",
            }
        )
        mlflow.log_metrics(
            {"challenger_score": challenger_score, **({"champion_score": champion_score} if champion else {})}
        )
        tags = {
            "evaluation.verdict": "pass" if passed else "fail",
            "evaluation.reason": reason,
            "evaluation.metric": "roc_auc" if task == "binary" else ("r2" if task == "regression" else "accuracy"),
            "evaluation.challenger_score": f"{challenger_score:.6f}",
            "evaluation.champion_score": "" if champion_score is None else f"{champion_score:.6f}",
            "evaluation.champion_version": str(champion.version) if champion else "",
            "evaluation.run_id": active.info.run_id,
        }
        for key, value in tags.items():
            client.set_model_version_tag(challenger.name, str(challenger.version), key, value)
        mlflow.set_tags({"evaluation.verdict": tags["evaluation.verdict"]})
    if passed and args.promote_to:
        _promote(client, challenger, args.promote_to)
    print(
        f"evaluate: {challenger.name} version {challenger.version} {tags['evaluation.verdict']}: {reason}"
        + (f"; promoted to {args.promote_to}" if passed and args.promote_to else "")
    )
    return passed


def _champion(uri: str):
    if not uri:
        return None
    try:
        return tracking.resolve(uri)
    except tracking.NoSuchVersion:  # no champion yet: the first model is judged on min_score alone
        return None


def _scorer(task: str, holdout: pd.DataFrame, target: str):
    features, label = holdout.drop(columns=[target]), holdout[target]

    def score(uri: str) -> float:
        return families.score(task, mlflow.sklearn.load_model(uri), features, label)["score"]

    return score


def _promote(client: mlflow.MlflowClient, version, promote_to: str) -> None:
    if promote_to.startswith("@"):
        client.set_registered_model_alias(version.name, promote_to[1:], str(version.version))
    else:
        client.transition_model_version_stage(
            version.name,
            str(version.version),
            promote_to,
            archive_existing_versions=promote_to in ("Staging", "Production"),
        )


def main(argv: list[str] | None = None) -> None:
    cli.main(parser(), run, argv)


if __name__ == "__main__":
    main()

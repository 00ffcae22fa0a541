"""Lineage sync: AWS calls for a first sync, an unchanged re-sync, and a re-sync after one change.

    python benchmarks/lineage.py [--versions 3] [--datasets 2]

On the sandbox, with a throwaway sqlite tracking store: a registered model whose every version
after the first is retrained from the one before (``parent.*`` tags), each run with ``--datasets``
dataset inputs. Then ``lineage sync --model`` runs three times: first, unchanged, and after one
run got a new param. Calls are counted by operation from the sync's own client (botocore's
``before-call`` event). The baseline is the first sync: what a tool that writes without reading
first would pay on every run, if AWS let it (creating an existing Action or Context fails, and an
Artifact would be duplicated).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _train(mlflow, name: str, version_before: str | None, datasets: int) -> tuple[str, str]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0], "y": [0, 0, 1, 1]})
    with mlflow.start_run() as run:
        mlflow.log_params({"C": 1.0, "seed": 0})
        if version_before:
            mlflow.set_tags({"parent.registered_model": name, "parent.version": version_before})
        for i in range(datasets):
            mlflow.log_input(
                mlflow.data.from_pandas(
                    frame.assign(i=i),
                    source=f"s3://data/{run.info.run_id}-{i}.parquet",
                    name=f"deliveries-{i}",
                    targets="y",
                ),
                context="training",
            )
        info = mlflow.sklearn.log_model(
            LogisticRegression().fit(frame[["a", "b"]], frame["y"]), name="model", registered_model_name=name
        )
    return str(info.registered_model_version), run.info.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--datasets", type=int, default=2)
    args = parser.parse_args()

    from mlflow_plugins.sandbox import Sandbox

    with tempfile.TemporaryDirectory() as root, Sandbox(port=0, time_scale=0.001) as sandbox:
        os.environ.update(sandbox.env())
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
        mlflow.set_experiment("lineage-benchmark")
        version, runs = None, []
        for _ in range(args.versions):
            version, run_id = _train(mlflow, "churn", version, args.datasets)
            runs.append(run_id)

        from mlflow_plugins.aws import AwsSettings, make_clients
        from mlflow_plugins.lineage.sync import LineageSync

        sagemaker = make_clients(AwsSettings())("sagemaker")
        rows = []
        for label in ("first sync", "unchanged re-sync", "re-sync after one new param"):
            if label.startswith("re-sync after"):
                mlflow.MlflowClient().log_param(runs[0], "note", "changed")
            sync = LineageSync(sagemaker)
            sync.sync_model("churn")
            sync.writer.close()
            rows.append((label, sync.writer.reads, sync.writer.writes, dict(sync.writer.calls)))
        first = rows[0][1] + rows[0][2]
        print(f"{args.versions} versions (each retrained from the one before), {args.datasets} datasets per run\n")
        print("| sync | reads | writes | calls | vs first |\n|---|---:|---:|---:|---:|")
        for label, reads, writes, _ in rows:
            print(f"| {label} | {reads} | {writes} | {reads + writes} | {(reads + writes) / first:.2f}x |")
        for label, _, _, calls in rows:
            print(f"\n{label}: " + ", ".join(f"{op} {n}" for op, n in sorted(calls.items())))


if __name__ == "__main__":
    main()

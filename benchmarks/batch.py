"""Batch benchmark: a sandbox batch transform job against ``mlflow models predict`` on the same
rows, side by side in one run.

    python benchmarks/batch.py [--rows 100000] [--models pipeline,trees100] [--quick]

Per model (the suite's scikit-learn pipeline over 3 columns, and a random forest over 100
features): the rows are written once as 4 CSV objects (no header, as batch transform sends them)
and once as one CSV file with a header (for ``mlflow models predict -t csv``). Then, in
``--rounds`` rounds whose order turns each round (medians reported):

* ``mlflow models predict --env-manager local`` on the file (one process: start, load, predict);
* a batch transform job on 1 instance and one on 2 (``MultiRecord``, 6 MB requests), each timed
  from ``BatchTransform.run`` to its return: the SageMaker model, the containers' start, the
  requests, the output objects;
Every job after the first reuses the SageMaker model; the first job's upload is the only one.
Then a last job of the same model version, for the bytes it uploads (the goal is 0).

Reports rows per second (wall time) for each, the job's own duration (TransformStartTime to
TransformEndTime), the ratio of each job to ``mlflow models predict`` and the 2-instance scaling
ratio. Outputs are checked against ``mlflow models predict``'s answers before a number is kept.

The sandbox runs each instance as a serving-runtime process on this machine, so the instances
share its cores (2 here) with the benchmark: the scaling ratio is what two processes get on
this machine, not what two SageMaker instances get.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.serving import save_trees100, trees100_frame  # noqa: E402
from tests.serving.conftest import delivery_frame, save_sklearn_model  # noqa: E402

BIN = Path(sys.executable).parent
BUCKET = "bench-data"
OBJECTS = 4

MODELS = {
    "pipeline": ("scikit-learn pipeline, 3 columns", save_sklearn_model, lambda n: delivery_frame(n=n, seed=7)[0]),
    "trees100": ("random forest, 100 features, 50 trees", save_trees100, trees100_frame),
}


def mlflow_predict(model: Path, data: Path, out: Path) -> tuple[float, list[str]]:
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "mlflow"), "models", "predict", "-m", str(model), "-i", str(data), "-t", "csv", "-o", str(out)]
        + ["--env-manager", "local"],
        check=True,
        capture_output=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": "file:///dev/null"},
    )
    seconds = time.perf_counter() - start
    answers = json.loads(out.read_text())["predictions"]
    return seconds, [str(a) for a in answers]


def job(clients, model: Path, name: str, instances: int):
    from mlflow_plugins.deploy.batch import BatchTransform
    from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

    start = time.perf_counter()
    result = BatchTransform(clients).run(
        str(model),
        {
            "s3_input_uri": f"s3://{BUCKET}/{name}/in/",
            "s3_output_path": f"s3://{BUCKET}/{name}/out-{instances}-{time.time_ns()}/",
            "execution_role_arn": EXECUTION_ROLE_ARN,
            "instance_count": instances,
            "timeout_seconds": 3600,
        },
    )
    return time.perf_counter() - start, result


def answers_of(clients, result) -> list[str]:
    s3 = clients("s3")
    lines: list[str] = []
    for uri in sorted(result.outputs):
        bucket, key = uri[len("s3://") :].split("/", 1)
        lines.extend(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines())
    return lines


def bench_model(clients, scratch: Path, name: str, rows: int, rounds: int) -> dict:
    checked: list = []
    description, save, frame_of = MODELS[name]
    model = save(scratch / name)
    frame = frame_of(rows).reset_index(drop=True)
    data = scratch / f"{name}.csv"
    frame.to_csv(data, index=False)
    s3 = clients("s3")
    size = -(-rows // OBJECTS)
    for part in range(OBJECTS):
        body = frame.iloc[part * size : (part + 1) * size].to_csv(index=False, header=False).encode()
        s3.put_object(Bucket=BUCKET, Key=f"{name}/in/part-{part}.csv", Body=body)
    expected: list[str] | None = None
    times: dict[str, list[float]] = {"predict": [], "job1": [], "job2": [], "job1_own": [], "job2_own": []}
    for round_ in range(rounds):  # the order turns each round, so drift in the machine's speed hits all three
        order = ["predict", 1, 2] if round_ % 2 == 0 else [2, 1, "predict"]
        for what in order:
            if what == "predict":
                seconds, answers = mlflow_predict(model, data, scratch / f"{name}.json")
                expected = expected or answers
                times["predict"].append(seconds)
                continue
            seconds, result = job(clients, model, name, int(what))
            times[f"job{what}"].append(seconds)
            times[f"job{what}_own"].append(result.duration_seconds)
            checked.append((result, int(what)))
    for result, instances in checked:
        if answers_of(clients, result) != expected:
            raise SystemExit(f"{name}: the {instances}-instance job's answers differ from mlflow models predict's")
    checked.clear()
    cells = {"model": name, "description": description, "rows": rows, "rounds": rounds}
    cells["mlflow_models_predict_s"] = statistics.median(times["predict"])
    for instances in (1, 2):
        cells[f"job{instances}_s"] = statistics.median(times[f"job{instances}"])
        cells[f"job{instances}_job_s"] = statistics.median(times[f"job{instances}_own"])
    _, again = job(clients, model, name, 1)
    cells["second_job_bytes_uploaded"] = again.bytes_uploaded
    cells["second_job_model_reused"] = again.model_reused
    return cells


def report(cells: list[dict]) -> None:
    print(
        "| model | rows | mlflow models predict rows/s | job, 1 instance rows/s (ratio) | job, 2 instances rows/s (ratio) "
        "| 2/1 scaling | job's own time 1 / 2 instances | 2nd job: bytes uploaded |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in cells:
        base = c["rows"] / c["mlflow_models_predict_s"]
        one, two = c["rows"] / c["job1_s"], c["rows"] / c["job2_s"]
        print(
            f"| {c['model']} ({c['description']}) | {c['rows']:,} | {base:,.0f} | {one:,.0f} ({one / base:.2f}x) | "
            f"{two:,.0f} ({two / base:.2f}x) | {two / one:.2f}x | {c['job1_job_s']:.1f} s / {c['job2_job_s']:.1f} s | "
            f"{c['second_job_bytes_uploaded']} (model reused: {c['second_job_model_reused']}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--models", default="pipeline,trees100")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three, medians reported")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 1 round")
    args = parser.parse_args()
    rows = 20_000 if args.quick else args.rows
    rounds = 1 if args.quick else args.rounds

    import boto3

    from mlflow_plugins.aws import AwsClients
    from mlflow_plugins.sandbox import Sandbox

    with Sandbox(port=0, time_scale=0.002, instance_cap=2) as box, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(box.env())
        os.environ["MLFLOW_SAGEMAKER_OPS_WAIT_DELAY"] = "0.1"
        session = boto3.Session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1")
        clients = AwsClients(session)
        clients("s3").create_bucket(Bucket=BUCKET)
        cells = [bench_model(clients, Path(tmp), name, rows, rounds) for name in args.models.split(",")]
    report(cells)
    print(json.dumps(cells, indent=2))


if __name__ == "__main__":
    main()

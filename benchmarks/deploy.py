"""Our ``-t sagemaker`` client against MLflow's built-in SageMaker client, in one run, on the sandbox.

    python benchmarks/deploy.py

The same two scikit-learn model versions go through both clients: create (v1), update (v2),
update again with v2 (a redeploy of the same version), delete. For each step it reports:

* AWS calls, by counting every botocore API call made in this process (both clients use boto3;
  MLflow's builds its own sessions, so the count hooks ``BaseClient._make_api_call``), with the
  status polls (DescribeEndpoint, ListEndpoints) apart: their number follows the poll interval
  and how long the sandbox takes to start a serving process, not the client's design;
* bytes uploaded to S3 (PutObject and UploadPart bodies); goal for the redeploy: 0;
* wall time, and wall time minus the time each client spends sleeping between status polls
  (MLflow's fixed ``time.sleep(5)``; ours is botocore's waiter delay, 5 s here too, ``--delay``).

The sandbox runs with a time scale of 1e-4, so its simulated delays (endpoint creation, update
stages) add only milliseconds: what remains is the clients' own cost and the sandbox's real work
(starting one serving process per variant). Both clients get the same config: the execution
role, a bucket, an image URL, one ml.m5.large instance, synchronous.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import botocore.client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN, Sandbox  # noqa: E402

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlflow-pyfunc:bench"
BUCKET = "bench-models"
STEPS = ("create v1", "update v2", "redeploy v2", "delete")
POLLS = {"sagemaker:DescribeEndpoint", "sagemaker:ListEndpoints"}  # what both clients poll status with


class Meter:
    """Counts API calls and uploaded bytes of every botocore client in this process."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.bytes = 0
        self.slept = 0.0
        self.lock = threading.Lock()
        self._original = botocore.client.BaseClient._make_api_call

    def install(self) -> None:
        meter, original = self, self._original

        def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
            with meter.lock:
                meter.calls[f"{client.meta.service_model.service_name}:{operation}"] += 1
                if operation in ("PutObject", "UploadPart"):
                    meter.bytes += _size(params.get("Body"))
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]

    def clock(self) -> Any:
        """A stand-in for the ``time`` module of one client module: the same, but its sleeps are
        counted (only that module's: other threads' sleeps are not)."""
        meter = self

        class Clock:
            def __getattr__(self, name: str) -> Any:
                return getattr(time, name)

            @staticmethod
            def sleep(seconds: float) -> None:
                started = time.perf_counter()
                time.sleep(seconds)
                with meter.lock:
                    meter.slept += time.perf_counter() - started

        return Clock()

    @contextlib.contextmanager
    def step(self, results: dict[str, dict[str, Any]], name: str):
        with self.lock:
            self.calls.clear()
            self.bytes, self.slept = 0, 0.0
        started = time.perf_counter()
        yield
        wall = time.perf_counter() - started
        polls = sum(n for call, n in self.calls.items() if call in POLLS)
        results[name] = {
            "calls": sum(self.calls.values()) - polls,
            "polls": polls,
            "bytes": self.bytes,
            "wall": wall,
            "busy": wall - self.slept,
            "by_call": dict(self.calls),
        }


def _size(body: Any) -> int:
    if body is None:
        return 0
    if isinstance(body, (bytes, bytearray, str)):
        return len(body)
    with contextlib.suppress(TypeError):
        return len(body)
    position = body.tell()
    end = body.seek(0, os.SEEK_END)
    body.seek(position)
    return end - position


def save_models(root: Path) -> dict[str, str]:
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    paths = {}
    for version, seed in (("v1", 1), ("v2", 2)):
        rng = np.random.default_rng(seed)
        features = rng.normal(size=(400, 6))
        label = (features[:, 0] + rng.normal(0, 0.5, 400) > 0).astype(int)
        model = LogisticRegression().fit(features, label)
        paths[version] = str(root / version)
        mlflow.sklearn.save_model(model, paths[version], signature=infer_signature(features, label))
    return paths


def run_ours(models: dict[str, str], meter: Meter, delay: float) -> dict[str, dict[str, Any]]:
    import botocore.waiter
    from mlflow.deployments import get_deploy_client

    os.environ["MLFLOW_SAGEMAKER_OPS_WAIT_DELAY"] = str(delay)
    botocore.waiter.time = meter.clock()  # type: ignore[attr-defined]  # the waiter's polls
    client = get_deploy_client("sagemaker-ops:/us-east-1")
    config = {"execution_role_arn": EXECUTION_ROLE_ARN, "bucket": BUCKET, "image_url": IMAGE}
    results: dict[str, dict[str, Any]] = {}
    with meter.step(results, STEPS[0]):
        client.create_deployment("bench-ours", models["v1"], config=config)
    with meter.step(results, STEPS[1]):
        client.update_deployment("bench-ours", models["v2"], config=config)
    with meter.step(results, STEPS[2]):
        client.update_deployment("bench-ours", models["v2"], config=config)
    with meter.step(results, STEPS[3]):
        client.delete_deployment("bench-ours")
    botocore.waiter.time = time  # type: ignore[attr-defined]
    return results


def run_builtin(models: dict[str, str], meter: Meter) -> dict[str, dict[str, Any]]:
    import mlflow.sagemaker

    mlflow.sagemaker.time = meter.clock()  # its status polls
    client = mlflow.sagemaker.SageMakerDeploymentClient("sagemaker:/us-east-1")
    config = {
        "execution_role_arn": EXECUTION_ROLE_ARN,
        "bucket": BUCKET,
        "image_url": IMAGE,
        "region_name": "us-east-1",
        "instance_type": "ml.m5.large",
        "synchronous": True,
    }
    results: dict[str, dict[str, Any]] = {}
    with meter.step(results, STEPS[0]):
        client.create_deployment("bench-builtin", models["v1"], flavor="python_function", config=config)
    with meter.step(results, STEPS[1]):
        client.update_deployment(
            "bench-builtin", models["v2"], flavor="python_function", config={**config, "mode": "replace"}
        )
    with meter.step(results, STEPS[2]):
        client.update_deployment(
            "bench-builtin", models["v2"], flavor="python_function", config={**config, "mode": "replace"}
        )
    with meter.step(results, STEPS[3]):
        client.delete_deployment("bench-builtin", config={"region_name": "us-east-1", "synchronous": True})
    mlflow.sagemaker.time = time
    return results


# Why ours makes a call the built-in client does not (or more often): the feature it serves.
FEATURES = {
    "s3:HeadBucket": "the default bucket found without s3:ListAllMyBuckets",
    "s3:HeadObject": "content addressing: an archive S3 has already is not uploaded again",
    "s3:ListObjectsV2": "delete: the endpoint's archives and what earlier failures left",
    "s3:DeleteObjects": "delete: the endpoint's archives",
    "sagemaker:ListTags": "update carries the user's tags over (MLflow's client drops them)",
    "sagemaker:DescribeEndpointConfig": "update carries data capture, async and KMS settings over",
    "sagemaker:DescribeModel": "update carries the env, image and network settings over; delete finds the archives",
    "sagemaker:AddTags": "update: the endpoint's tags say what it serves now",
    "sagemaker:ListEndpointConfigs": "configs that earlier failed deploys of this endpoint left",
    "sagemaker:ListModels": "models that earlier failed deploys of this endpoint left",
    "sagemaker:DescribeEndpoint": "the live endpoint read before a write",
    "sts:GetCallerIdentity": "the account, for the default bucket and image",
    "cloudwatch:DescribeAlarms": "the rollback alarms checked before any write",
    "cloudwatch:DeleteAlarms": "delete: the variant's auto_alarms go with it (a no-op where there are none)",
    "application-autoscaling:DescribeScalableTargets": (
        "update's answer: the autoscaling range that an update without the key keeps; delete removes it"
    ),
}


def extra_calls(ours: dict[str, int], theirs: dict[str, int]) -> list[str]:
    """The calls ours makes beyond the built-in client's, each with the feature it serves."""
    lines = []
    for call in sorted(ours):
        more = ours[call] - theirs.get(call, 0)
        if more > 0 and call not in POLLS:
            lines.append(f"+{more} {call}: {FEATURES.get(call, 'NOT EXPLAINED')}")
    return lines


def ratio(ours: float, theirs: float) -> str:
    if ours == 0 and theirs == 0:
        return "="
    if ours == 0:
        return "0 vs >0"
    return f"{theirs / ours:.2f}x"


def report(ours: dict[str, dict[str, Any]], builtin: dict[str, dict[str, Any]], verbose: bool) -> None:
    print(f"{'step':<13} {'metric':<22} {'ours':>10} {'built-in':>10}  built-in/ours")
    for step in STEPS:
        a, b = ours[step], builtin[step]
        print(
            f"{step:<13} {'AWS calls (not polls)':<22} {a['calls']:>10} {b['calls']:>10}  {ratio(a['calls'], b['calls'])}"
        )
        print(f"{'':<13} {'status polls':<22} {a['polls']:>10} {b['polls']:>10}  {ratio(a['polls'], b['polls'])}")
        print(f"{'':<13} {'bytes uploaded':<22} {a['bytes']:>10} {b['bytes']:>10}  {ratio(a['bytes'], b['bytes'])}")
        print(f"{'':<13} {'wall s':<22} {a['wall']:>10.2f} {b['wall']:>10.2f}  {ratio(a['wall'], b['wall'])}")
        print(
            f"{'':<13} {'wall s minus poll sleep':<22} {a['busy']:>10.2f} {b['busy']:>10.2f}  {ratio(a['busy'], b['busy'])}"
        )
        for line in extra_calls(a["by_call"], b["by_call"]):
            print(f"{'':<13} {line}")
    if verbose:
        for name, results in (("ours", ours), ("built-in", builtin)):
            for step in STEPS:
                print(f"{name} {step}: {results[step]['by_call']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="list the calls of every step")
    parser.add_argument(
        "--delay",
        type=float,
        default=5.0,
        help="our waiter's seconds between polls (MLflow's client polls every 5 s; ours defaults to 15)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(port=0, time_scale=1e-4) as sandbox:
        os.environ.update(sandbox.env())
        sandbox.control.register_image(IMAGE)  # as `docker push` would (the sandbox checks its ECR)
        models = save_models(Path(tmp))
        meter = Meter()
        meter.install()
        import boto3

        boto3.client("s3", endpoint_url=sandbox.url).create_bucket(Bucket=BUCKET)
        ours = run_ours(models, meter, args.delay)
        builtin = run_builtin(models, meter)
    report(ours, builtin, args.verbose)


if __name__ == "__main__":
    main()

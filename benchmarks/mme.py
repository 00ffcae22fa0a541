"""100 models on one multi-model endpoint against 100 single-model endpoints, on one sandbox.

    python benchmarks/mme.py [--models 100] [--singles 100]

Both through the suite's ``sagemaker`` deployment client (``get_deploy_client("sagemaker")``),
with the same ``--models`` distinct scikit-learn pipelines (one seed each), one ml.m5.large
instance per endpoint:

* MME: ``create_endpoint`` once, then each model added with ``create_deployment(endpoint=...)``;
  the first invoke of each model is cold (fetched from S3 and loaded by the runtime), the second warm.
* Single-model endpoints: each model gets its own endpoint (``create_deployment``); the first
  invoke after InService, then a second. The sandbox runs one serving process per endpoint, so
  ``--singles`` endpoints are made, measured and deleted one at a time (100 resident processes
  would need several GB here); the instance count is what 100 live endpoints need.

Reported: instances needed, time to add a model, invoke latency (median and p95), and an
estimated monthly cost at a public on-demand price written below. The sandbox scales simulated
endpoint creation by ``--time-scale``, so "time to add" for a single endpoint is mostly starting a
real serving process; on AWS, creating an endpoint takes minutes, which the same scale would show.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN, Sandbox  # noqa: E402
from tests.serving.conftest import delivery_frame, save_sklearn_model  # noqa: E402

# SageMaker real-time inference, ml.m5.large, us-east-1, on-demand: USD per instance-hour, from
# https://aws.amazon.com/sagemaker/pricing/ as of 2024-06 (not re-checked here: this machine has no
# internet access). Check the page for your region and date before relying on the estimate.
PRICE_PER_HOUR = 0.115
PRICE_DATE = "2024-06"
HOURS_PER_MONTH = 730
CONFIG = {"execution_role_arn": EXECUTION_ROLE_ARN, "instance_type": "ml.m5.large", "instance_count": 1}


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"{statistics.median(values) * 1000:.0f} ms (p95 {p95 * 1000:.0f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--singles", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=0.001)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mme-bench-"))
    print(f"Saving {args.models} models ...", file=sys.stderr)
    models = [str(save_sklearn_model(root / f"m{i}", seed=i)) for i in range(args.models)]
    rows, _ = delivery_frame(n=1, seed=0)
    with Sandbox(port=0, time_scale=args.time_scale) as sandbox:
        os.environ.update(sandbox.env())
        os.environ["MLFLOW_SAGEMAKER_OPS_WAIT_DELAY"] = "0.05"
        from mlflow.deployments import get_deploy_client

        client = get_deploy_client("sagemaker")
        quiet = open(os.devnull, "w")  # noqa: SIM115  (the clients' progress lines)
        stderr, sys.stderr = sys.stderr, quiet
        try:
            mme_create = timed(lambda: client.create_endpoint("bench-mme", CONFIG))
            mme_add = [
                timed(lambda i=i: client.create_deployment(f"m{i}", models[i], endpoint="bench-mme"))
                for i in range(args.models)
            ]
            cold = [
                timed(lambda i=i: client.predict(endpoint="bench-mme", deployment_name=f"m{i}", inputs=rows))
                for i in range(args.models)
            ]
            warm = [
                timed(lambda i=i: client.predict(endpoint="bench-mme", deployment_name=f"m{i}", inputs=rows))
                for i in range(args.models)
            ]
            client.delete_endpoint("bench-mme")
            single_add, single_first, single_warm = [], [], []
            for i in range(args.singles):
                name = f"bench-single-{i}"
                single_add.append(
                    timed(lambda i=i, name=name: client.create_deployment(name, models[i % args.models], config=CONFIG))
                )
                single_first.append(timed(lambda name=name: client.predict(deployment_name=name, inputs=rows)))
                single_warm.append(timed(lambda name=name: client.predict(deployment_name=name, inputs=rows)))
                client.delete_deployment(name)
        finally:
            sys.stderr = stderr
    instances = {"mme": 1, "single": args.models}
    cost = {k: v * PRICE_PER_HOUR * HOURS_PER_MONTH for k, v in instances.items()}
    print(
        f"\n{args.models} models: one multi-model endpoint against one endpoint per model "
        f"(singles measured: {args.singles}; sandbox time scale {args.time_scale:g})"
    )
    print("| measure | one MME | one endpoint per model | MME / single |\n|---|---:|---:|---:|")
    print(
        f"| instances needed (ml.m5.large) | {instances['mme']} | {instances['single']} | {instances['mme'] / instances['single']:.3f}x |"
    )
    print(
        f"| time to add a model, median | {statistics.median(mme_add) * 1000:.0f} ms | {statistics.median(single_add) * 1000:.0f} ms | "
        f"{statistics.median(mme_add) / statistics.median(single_add):.3f}x |"
    )
    print(
        f"| first invoke (MME: cold load), median | {summary(cold)} | {summary(single_first)} | "
        f"{statistics.median(cold) / statistics.median(single_first):.2f}x |"
    )
    print(
        f"| warm invoke, median | {summary(warm)} | {summary(single_warm)} | {statistics.median(warm) / statistics.median(single_warm):.2f}x |"
    )
    print(
        f"| estimated monthly cost (USD {PRICE_PER_HOUR}/instance-hour, {PRICE_DATE}) | ${cost['mme']:,.0f} | ${cost['single']:,.0f} | "
        f"{cost['mme'] / cost['single']:.3f}x |"
    )
    print(
        f"\nMME endpoint creation: {mme_create:.1f} s. The MME needs one instance only while the working set fits its memory;"
        " the runtime's LRU cache unloads the least recently used models beyond its budget."
    )
    print(
        json.dumps(
            {
                "mme_add_s": statistics.median(mme_add),
                "single_add_s": statistics.median(single_add),
                "cold_s": statistics.median(cold),
                "warm_s": statistics.median(warm),
                "single_first_s": statistics.median(single_first),
                "single_warm_s": statistics.median(single_warm),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Multi-model serving figures: cold load, warm invoke, and 200 models under a budget for 50.

    python benchmarks/serving_mme.py [--models 200] [--fit 50] [--invokes 600]

One runtime in multi-model mode (1 worker), with a memory budget that holds ``--fit`` models.
Reports the latency of loading a model (POST /models), of invoking a resident model, and of
invoking an evicted one (reloaded on demand), then a uniform and a skewed (80% of calls to 10% of
the models) invoke pattern over all the models: latency, how often the model was resident, and
how many evictions happened. The resident count never exceeds the budget.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mlflow_plugins.serving.model import directory_bytes  # noqa: E402
from tests.serving.conftest import save_sklearn_model, start_runtime  # noqa: E402

ONE = json.dumps({"dataframe_records": [{"distance_km": 120.0, "stops": 4, "weather": "rain"}]})


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {ordered[int(0.99 * (len(ordered) - 1))] * 1000:.1f} ms"
    )


def timed(call) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    reply = call()
    return time.perf_counter() - started, reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--fit", type=int, default=50)
    parser.add_argument("--invokes", type=int, default=600)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as scratch:
        template = save_sklearn_model(Path(scratch) / "template")
        names = [f"model-{i:03d}" for i in range(args.models)]
        for name in names:
            shutil.copytree(template, Path(scratch) / name)
        size_mb = directory_bytes(template) / 2**20
        budget = size_mb * args.fit * 1.01
        server = start_runtime(
            "--multi-model", "--workers", "1", "--memory-budget-mb", f"{budget:.4f}", "--max-models", str(args.models)
        )
        session = requests.Session()
        try:
            server.wait_ready()
            loads = [
                timed(
                    lambda n=n: session.post(server.url + "/models", json={"model_name": n, "url": f"{scratch}/{n}"})
                )[0]
                for n in names
            ]

            def invoke(n: str) -> requests.Response:
                return session.post(
                    f"{server.url}/models/{n}/invoke", data=ONE, headers={"Content-Type": "application/json"}
                )

            warm = [timed(lambda: invoke(names[-1]))[0] for _ in range(200)]
            cold = [timed(lambda n=n: invoke(n))[0] for n in names[: args.fit // 2]]  # evicted by the later loads
            print(f"{args.models} models of {size_mb * 1024:.0f} KB each; budget {budget:.2f} MB (fits {args.fit})")
            print(f"load (POST /models):            {ms(loads)}")
            print(f"warm invoke (resident model):   {ms(warm)}")
            print(f"cold invoke (evicted, reloaded): {ms(cold)}")
            hot = names[: max(args.models // 10, 1)]
            for label, pick in (
                ("uniform", lambda: rng.choice(names)),
                ("skewed 80/10", lambda: rng.choice(hot) if rng.random() < 0.8 else rng.choice(names)),
            ):
                before = session.get(server.url + "/ping").json()
                times, resident = [], 0
                for _ in range(args.invokes):
                    name = pick()
                    listed = session.get(f"{server.url}/models/{name}").json()["resident"]
                    elapsed, reply = timed(lambda n=name: invoke(n))
                    assert reply.status_code == 200, reply.text
                    times.append(elapsed)
                    resident += listed
                after = session.get(server.url + "/ping").json()
                print(
                    f"{label:14} {args.invokes} invokes: {ms(times)}; resident hit rate "
                    f"{resident / args.invokes:.0%}; evictions {after['evictions'] - before['evictions']}; "
                    f"resident now {after['resident']} (budget {args.fit})"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()

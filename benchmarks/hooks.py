"""Registry hooks: time from a registry change to the first AWS call of the deployment it causes.

    python benchmarks/hooks.py [--samples 5] [--poll-seconds 5]

Three event sources, in one run, on the sandbox, each with its own controller subprocess:

* ``app``: ``mlflow server --app-name registry-hooks``; the change is a stage transition through
  ``/ajax-api/2.0/mlflow/model-versions/transition-stage`` (what the UI calls);
* ``webhook``: a plain ``mlflow server`` with an MLflow webhook on alias changes (webhooks do not
  cover stage transitions); the change is setting the alias;
* ``poll`` (the baseline, what MLflow's maintainers tell users to do): a plain server, no events;
  the change is a stage transition, found by the controller's full reconcile every
  ``--poll-seconds``.

The first two controllers poll every 600 s, so only their event source can start a deployment.
The time is measured from just before the REST call to the first AWS call the sandbox receives
after the controller has logged the deployment's start (``hooks log``): the controller's own
periodic passes make AWS calls too, which would blur the measure otherwise. Each sample waits for
the deployment to finish, then the next alternates between two versions. Goal: under 1 s for app
and webhook. Reported: median and worst, and each source's median as a ratio of polling's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlflow_plugins.sandbox import Sandbox  # noqa: E402
from registry_hooks.store import Store  # noqa: E402
from tests.hooks.conftest import SECRET, WAKE_TOKEN, Controller, eventually, policy_text, start_registry  # noqa: E402


def first_call_after_start(sandbox_url: str, store: Store, deployment: str, since: float) -> float:
    """Seconds from ``since`` to the first AWS call after the controller started this deployment."""
    started = eventually(
        lambda: next(
            (e["at"] for e in store.audit_log(deployment, 20) if e["result"] == "started" and e["at"] >= since), None
        ),
        timeout=120,
    )

    def first() -> float | None:
        calls = requests.get(f"{sandbox_url}/_sandbox/calls", timeout=10).json()["calls"]
        return next((c["at"] for c in calls if c["at"] >= started), None)

    return eventually(first, timeout=60) - since


def measure(
    source: str, registry, sandbox: Sandbox, env: dict[str, str], root: Path, samples: int, poll: float
) -> list[float]:
    model = registry.new_model(versions=2)
    deployment = f"{model}-{source}"
    rule = "alias: champion" if source == "webhook" else "stage: Production"
    policy = root / f"{source}.yaml"
    policy.write_text(policy_text(deployment, model, source=rule))
    controller = Controller(
        policy, registry, env, "--poll-seconds", str(poll if source == "poll" else 600), replica=f"bench-{source}"
    ).start()
    client = registry.client()
    if source == "webhook":
        from mlflow.entities.webhook import WebhookEvent

        client.create_webhook(
            name=f"bench-{model}",
            url=f"{controller.url}/webhooks/mlflow",
            secret=SECRET,
            events=[WebhookEvent("model_version_alias", "created")],
        )
    store = Store(registry.db)
    times = []
    try:
        for sample in range(samples):
            version = str(sample % 2 + 1)
            since = time.time()
            if source == "webhook":
                client.set_registered_model_alias(model, "champion", version)
            else:
                registry.transition(model, version, "Production")
            times.append(first_call_after_start(sandbox.url, store, deployment, since))
            eventually(
                lambda: registry.tags(model, version, deployment).get("status") == "IN_SERVICE",
                timeout=120,
                explain=controller.output,
            )
    finally:
        controller.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hooks-bench-"))
    with Sandbox(port=0, time_scale=0.002) as sandbox:
        env = {
            **os.environ,
            **sandbox.env(),
            "MLFLOW_SAGEMAKER_OPS_WAIT_DELAY": "0.1",
            "MLFLOW_REGISTRY_HOOKS_WEBHOOK_SECRET": SECRET,
            "MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN": WAKE_TOKEN,
        }
        os.environ.update(sandbox.env())
        with_app = start_registry(
            root / "app", f"sqlite:///{root / 'app.db'}", app=True, db=f"sqlite:///{root / 'hooks-app.db'}"
        )
        plain = start_registry(
            root / "plain", f"sqlite:///{root / 'plain.db'}", app=False, db=f"sqlite:///{root / 'hooks-plain.db'}"
        )
        try:
            results = {
                "app": measure("app", with_app, sandbox, env, root, args.samples, args.poll_seconds),
                "webhook": measure("webhook", plain, sandbox, env, root, args.samples, args.poll_seconds),
                "poll": measure("poll", plain, sandbox, env, root, args.samples, args.poll_seconds),
            }
        finally:
            with_app.server.stop()
            plain.server.stop()
    baseline = statistics.median(results["poll"])
    print(
        f"\nTime from the registry change to the deployment's first AWS call ({args.samples} samples each; "
        f"polling every {args.poll_seconds:g} s)"
    )
    print("| source | median | worst | median vs polling | goal |\n|---|---:|---:|---:|---|")
    for source, times in results.items():
        goal = "< 1 s: " + ("met" if max(times) < 1 else "NOT met") if source != "poll" else "baseline"
        print(
            f"| {source} | {statistics.median(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms | "
            f"{statistics.median(times) / baseline:.3f}x | {goal} |"
        )


if __name__ == "__main__":
    main()

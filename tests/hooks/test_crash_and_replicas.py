"""Crash safety (kill -9 at random moments) and two replicas sharing one PostgreSQL state."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter

import pytest

from tests.hooks.conftest import eventually, fresh_postgres_db, hooks_cli, policy_text, sagemaker_calls, start_registry

ROUNDS = int(os.environ.get("HOOKS_CRASH_ROUNDS", "6"))  # 20 and more by hand: each round is a deploy


def converged(registry, aws, model: str, deployment: str, want: str, other: str | None) -> list[str]:
    """What is wrong with the final state (empty when everything is right)."""
    wrong = []
    sm = aws("sagemaker")
    endpoints = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    if endpoints != [deployment]:
        wrong.append(f"endpoints {endpoints}")
    described = sm.describe_endpoint(EndpointName=deployment)
    models = [m["ModelName"] for m in sm.list_models()["Models"]]
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    if configs != [described["EndpointConfigName"]] or len(models) != 1:
        wrong.append(f"configs {configs} and models {models} beside the live {described['EndpointConfigName']}")
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=described["EndpointArn"])["Tags"]}
    if tags.get("mlflow-sagemaker-ops:model-version") != want or described["EndpointStatus"] != "InService":
        wrong.append(
            f"endpoint {described['EndpointStatus']} tagged version {tags.get('mlflow-sagemaker-ops:model-version')}"
        )
    if registry.tags(model, want, deployment).get("status") != "IN_SERVICE":
        wrong.append(f"v{want} tags {registry.tags(model, want, deployment)}")
    if other and registry.tags(model, other, deployment).get("status") not in (None, "RETIRED"):
        wrong.append(f"v{other} tags {registry.tags(model, other, deployment)}")
    served = registry.client().get_registered_model(model).tags.get(f"deploy.{deployment}.version")
    if served != want:
        wrong.append(f"registered model says v{served} serves")
    return wrong


def test_kill_9_at_random_moments_during_deployments_loses_nothing(registry, controllers, aws):
    rng = random.Random(int(os.environ.get("HOOKS_CRASH_SEED", "20261122")))
    model = registry.new_model(versions=2)
    deployment = f"{model}-crash"
    # Lineage (tested in test_controller.py) is off: this test is about the deployments' state.
    controller = controllers(policy_text(deployment, model), registry, "--poll-seconds", "600", "--no-lineage")
    kills_mid_deploy = 0
    for round_ in range(ROUNDS):
        want, other = ("1", "2") if round_ % 2 == 0 else ("2", "1")
        registry.transition(model, want, "Production")
        time.sleep(rng.uniform(0.0, 2.5))  # a random moment of the deployment
        kills_mid_deploy += registry.tags(model, want, deployment).get("status") in ("PENDING", "DEPLOYING")
        controller.kill9()
        controller.start()
        eventually(
            lambda: registry.tags(model, want, deployment).get("status") == "IN_SERVICE",
            timeout=120,
            what=f"round {round_}: v{want} IN_SERVICE",
            explain=controller.output,
        )
        eventually(
            lambda: not converged(registry, aws, model, deployment, want, other),
            timeout=20,
            what=f"round {round_}: the right final state",
            explain=lambda: "\n".join(converged(registry, aws, model, deployment, want, other)) + controller.output(),
        )
    assert kills_mid_deploy >= ROUNDS // 4, f"only {kills_mid_deploy} of {ROUNDS} kills came during a deployment"


@pytest.fixture(scope="module")
def postgres_registry(tmp_path_factory):
    """``mlflow server --app-name registry-hooks`` on PostgreSQL, waking two controller replicas."""
    root = tmp_path_factory.mktemp("pg")
    reg = start_registry(root, fresh_postgres_db(), app=True, db=fresh_postgres_db(), controllers=2)
    yield reg
    reg.server.stop()


def test_two_replicas_on_postgresql_never_deploy_the_same_thing_twice(postgres_registry, controllers, aws, sandbox):
    registry = postgres_registry
    model = registry.new_model(versions=3)
    deployment = f"{model}-ha"
    policy = policy_text(deployment, model)
    replicas = [
        controllers(
            policy, registry, "--poll-seconds", "0.3", "--lease-seconds", "5", "--no-lineage", replica=name, port=port
        )
        for name, port in zip(("replica-a", "replica-b"), registry.wake_ports)
    ]
    explain = lambda: "\n".join(r.output() for r in replicas)  # noqa: E731
    for version in ("1", "2", "3"):
        registry.transition(model, version, "Production")
        eventually(
            lambda: registry.tags(model, version, deployment).get("status") == "IN_SERVICE",
            timeout=120,
            what=f"v{version} IN_SERVICE",
            explain=explain,
        )
    rollouts = sagemaker_calls(sandbox, ("CreateEndpoint", "UpdateEndpoint"))
    assert len(rollouts) == 3, rollouts
    log = [
        json.loads(line)
        for line in hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
    ]
    started = Counter(e["version"] for e in log if e["result"] == "started")
    assert started == {"1": 1, "2": 1, "3": 1}, log
    assert not converged(registry, aws, model, deployment, "3", "2")
    passes = {e["replica"] for e in log}
    assert passes <= {"replica-a", "replica-b"} and passes, log


FREEZE_ROUNDS = int(os.environ.get("HOOKS_FREEZE_ROUNDS", "1"))


@pytest.mark.parametrize("round_", range(FREEZE_ROUNDS))
def test_a_replica_frozen_past_its_lease_writes_nothing_when_it_wakes(postgres_registry, controllers, aws, round_):
    """SIGSTOP the replica that is rolling out v2 until its lease has passed; the other replica
    finishes v2 and deploys v3; SIGCONT: the woken replica sees an endpoint that serves another
    config, which is no rollback of its own, and its registry writes are fenced: every tag stays true."""
    import signal

    registry = postgres_registry
    model = registry.new_model(versions=3)
    deployment = f"{model}-frozen"
    # a canary that bakes ~6 s of the sandbox's scaled clock: long enough to freeze a replica mid-rollout
    policy = policy_text(deployment, model, extra="      strategy: canary\n      bake_seconds: 3000\n")
    replicas = {
        name: controllers(
            policy, registry, "--poll-seconds", "0.3", "--lease-seconds", "6", "--no-lineage", replica=name, port=port
        )
        for name, port in zip(("replica-a", "replica-b"), registry.wake_ports)
    }
    explain = lambda: "\n".join(r.output() for r in replicas.values())  # noqa: E731

    def log() -> list[dict]:
        lines = hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
        return [json.loads(line) for line in lines]

    registry.transition(model, "1", "Production")
    eventually(
        lambda: registry.tags(model, "1", deployment).get("status") == "IN_SERVICE",
        timeout=120,
        what="v1 IN_SERVICE",
        explain=explain,
    )
    registry.transition(model, "2", "Production")
    started = eventually(
        lambda: [e for e in log() if e["version"] == "2" and e["result"] == "started"],
        timeout=60,
        what="the v2 rollout starting",
        explain=explain,
    )
    frozen = replicas[started[0]["replica"]]
    os.killpg(frozen.process.pid, signal.SIGSTOP)
    try:
        eventually(
            lambda: registry.tags(model, "2", deployment).get("status") == "IN_SERVICE",
            timeout=120,
            what="the other replica finishing v2",
            explain=explain,
        )
        registry.transition(model, "3", "Production")
        eventually(
            lambda: registry.tags(model, "3", deployment).get("status") == "IN_SERVICE",
            timeout=120,
            what="v3 IN_SERVICE",
            explain=explain,
        )
    finally:
        os.killpg(frozen.process.pid, signal.SIGCONT)
    eventually(
        lambda: "no longer holds the lease" in frozen.output(),
        timeout=120,
        what="the woken replica finding its lease gone",
        explain=explain,
    )
    eventually(
        lambda: not converged(registry, aws, model, deployment, "3", "2"),
        timeout=60,
        what="every tag true",
        explain=lambda: "\n".join(converged(registry, aws, model, deployment, "3", "2")),
    )
    assert registry.tags(model, "1", deployment)["status"] == "RETIRED"
    assert all(e["result"] != "rolled-back" for e in log()), log()

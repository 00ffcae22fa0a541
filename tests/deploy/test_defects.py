"""Defects found in the target-contract review, each with the test that failed before its fix."""

from __future__ import annotations

import threading

import pytest

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.deploy import make_target
from mlflow_plugins.errors import AwsCallFailed, ResourceNotFound
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN


@pytest.fixture
def clients(aws, monkeypatch):
    monkeypatch.setenv("MLFLOW_SAGEMAKER_OPS_WAIT_DELAY", "0.1")
    return make_clients(AwsSettings())


def test_a_validation_error_that_is_not_not_found_is_not_read_as_missing(clients, sandbox, models):
    """DescribeEndpoint answers ValidationException for a missing endpoint and for other faults;
    before the fix, any of them made a live endpoint "not found" (and create would try again)."""
    target = make_target("sagemaker", clients)
    target.create("churn", models["v1"], {"execution_role_arn": EXECUTION_ROLE_ARN})
    sandbox.control.add_fault("DescribeEndpoint", kind="error", code="ValidationException", count=1,
                              message="1 validation error detected")
    with pytest.raises(AwsCallFailed) as caught:
        target.get("churn")
    assert "ValidationException" in str(caught.value)
    with pytest.raises(ResourceNotFound):  # a missing endpoint is still "not found"
        target.get("no-such-endpoint")


def test_wait_progress_on_a_shared_client_prints_only_its_own_endpoint(clients, aws, models):
    """The controller shares one client between deployments; before the fix, each deployment's
    progress hook printed every endpoint's DescribeEndpoint answers under its own heading."""
    from mlflow_plugins.deploy.common.progress import Progress

    target = make_target("sagemaker", clients)
    for name in ("blue", "green"):
        target.create(name, models["v1"], {"execution_role_arn": EXECUTION_ROLE_ARN})
    printed: dict[str, list[str]] = {"blue": [], "green": []}
    sagemaker = clients("sagemaker")
    def watch(name: str) -> None:  # as a deployment's wait does: its own hook, in its own thread
        hook = Progress(printed[name].append, name)
        sagemaker.meta.events.register("after-call.sagemaker.DescribeEndpoint", hook)
        try:
            for other in ("blue", "green", name):
                sagemaker.describe_endpoint(EndpointName=other)
        finally:
            sagemaker.meta.events.unregister("after-call.sagemaker.DescribeEndpoint", hook)

    threads = [threading.Thread(target=watch, args=(name,)) for name in printed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert printed["blue"] and printed["green"]
    assert all(" blue " in line for line in printed["blue"]) and all(" green " in line for line in printed["green"])


def test_ecs_waiters_are_bounded_by_the_configured_timeout(clients, monkeypatch):
    """Before the fix the ECS waiters ran up to 10,000 attempts (about 42 hours at 15 s)."""
    from botocore.exceptions import WaiterError

    from mlflow_plugins.deploy.ecs._deployer import EcsDeployer

    deployer = EcsDeployer(clients)
    seen = {}
    real = deployer.ecs.get_waiter

    def recording(name):
        waiter = real(name)
        wait = waiter.wait

        def recorded(**kwargs):
            seen[name] = kwargs["WaiterConfig"]
            return wait(**kwargs)

        waiter.wait = recorded
        return waiter

    monkeypatch.setattr(deployer.ecs, "get_waiter", recording)
    with pytest.raises(WaiterError):  # no such service: the waiter's MISSING acceptor ends it at once
        deployer._wait_inactive("models", "gone", timeout_seconds=3)
    assert seen["services_inactive"] == {"Delay": 0.1, "MaxAttempts": 30}

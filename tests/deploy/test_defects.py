"""Defects found in the target-contract review, each with the test that failed before its fix."""

from __future__ import annotations

import threading

import pytest

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.deploy import make_target
from mlflow_plugins.errors import AwsCallFailed, ResourceNotFound
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN


@pytest.fixture
def clients(aws):
    return make_clients(AwsSettings())


def test_a_validation_error_that_is_not_not_found_is_not_read_as_missing(clients, sandbox, models):
    """DescribeEndpoint answers ValidationException for a missing endpoint and for other faults;
    before the fix, any of them made a live endpoint "not found" (and create would try again)."""
    target = make_target("sagemaker", clients)
    target.create("churn", models["v1"], {"execution_role_arn": EXECUTION_ROLE_ARN})
    sandbox.control.add_fault(
        "DescribeEndpoint", kind="error", code="ValidationException", count=1, message="1 validation error detected"
    )
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


CONFIG = {"execution_role_arn": EXECUTION_ROLE_ARN}


def test_a_failed_delete_endpoint_keeps_the_alarms_and_the_scaling(clients, aws, sandbox, models):
    """Before, delete removed the alarms and the scaling policy first: a failed DeleteEndpoint left
    a live endpoint without its rollback alarms."""
    target = make_target("sagemaker", clients)
    target.create(
        "churn",
        models["v1"],
        {**CONFIG, "auto_alarms": True, "autoscaling": {"min_capacity": 1, "max_capacity": 2, "target": 50}},
    )
    sandbox.control.add_fault(
        "DeleteEndpoint", kind="error", code="ValidationException", count=1, message="Cannot delete the endpoint now"
    )
    with pytest.raises(AwsCallFailed) as caught:
        target.delete("churn", CONFIG)
    assert "unchanged, with its alarms and autoscaling" in str(caught.value)
    assert sorted(a["AlarmName"] for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]) == [
        "churn-primary-5xx",
        "churn-primary-model-latency",
    ]
    assert aws("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    target.delete("churn", CONFIG)
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert (
        aws("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    )


def test_a_missing_rollback_alarm_is_refused_before_any_write(clients, aws, sandbox, models):
    """Before, AWS found the missing alarm only at UpdateEndpoint, after the upload and CreateModel."""
    from tests.contract.conftest import sandbox_calls

    before = sandbox_calls(sandbox)
    with pytest.raises(Exception) as caught:
        make_target("sagemaker", clients).create("churn", models["v1"], {**CONFIG, "alarms": "no-such-alarm"})
    assert "alarms=['no-such-alarm']" in str(caught.value) and "Create the alarm first" in str(caught.value)
    writes = [
        c for c in sandbox_calls(sandbox)[len(before) :] if not c.split(":")[1].startswith(("Describe", "List", "Get"))
    ]
    assert writes == [] and aws("s3").list_buckets()["Buckets"] == []


def test_delete_collects_what_earlier_failures_of_the_endpoint_left(clients, aws, models):
    """Before, configs and models orphaned by an earlier failed update stayed after delete."""
    target = make_target("sagemaker", clients)
    target.create("churn", models["v1"], CONFIG)
    sm = aws("sagemaker")
    live_model = sm.list_models()["Models"][0]["ModelName"]
    container = sm.describe_model(ModelName=live_model)["PrimaryContainer"]
    orphan = "churn-20260101000000-abcdef"  # the suite's name for a model and config of this endpoint
    sm.create_model(ModelName=orphan, ExecutionRoleArn=EXECUTION_ROLE_ARN, PrimaryContainer=container)
    sm.create_endpoint_config(
        EndpointConfigName=orphan,
        ProductionVariants=[
            {"VariantName": "primary", "ModelName": orphan, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    target.delete("churn", CONFIG)
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []


def test_a_failed_create_whose_cleanup_fails_names_what_is_left(clients, aws, sandbox, models):
    """Before, a failed create whose own cleanup failed still said "Nothing was left behind"."""
    sandbox.control.add_fault("CreateEndpoint", kind="error", code="ResourceLimitExceeded", message="limit reached")
    sandbox.control.add_fault("DeleteModel", kind="error", code="AccessDeniedException", count=10)
    with pytest.raises(AwsCallFailed) as caught:
        make_target("sagemaker", clients).create("churn", models["v1"], CONFIG)
    message = str(caught.value)
    left = [m["ModelName"] for m in aws("sagemaker").list_models()["Models"]]
    assert len(left) == 1 and f"model {left[0]}" in message and "could not delete" in message
    assert "Nothing was left behind" not in message
    assert aws("sagemaker").list_endpoint_configs()["EndpointConfigs"] == []  # what could be undone was


@pytest.mark.parametrize("kind", ["sagemaker", "ecs"])
def test_a_model_without_python_function_or_a_missing_uri_makes_no_write(
    kind, clients, aws, sandbox, tmp_path, monkeypatch
):
    """Before, a model without the python_function flavor was uploaded and deployed (the endpoint
    then went Failed), and a models:/ URI that does not exist made the region's bucket first."""
    from tests.contract.conftest import sandbox_calls

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text("flavors:\n  sklearn: {sklearn_version: 1.5.0}\n")
    config = CONFIG
    if kind == "ecs":
        aws("ecs").create_cluster(clusterName="models")
        config = {**CONFIG, "task_role_arn": EXECUTION_ROLE_ARN, "cluster": "models", "subnets": ["subnet-0a1b2c3d"]}
    target = make_target(kind, clients)
    before = sandbox_calls(sandbox)
    with pytest.raises(Exception) as caught:
        target.create("churn", str(tmp_path / "m"), target.parse(config))
    assert "python_function" in str(caught.value) and "['sklearn']" in str(caught.value)
    with pytest.raises(Exception) as caught:
        target.create("churn", "models:/no-such-model/1", target.parse(config))
    assert "no-such-model" in str(caught.value)
    reads = ("Describe", "List", "Get", "Head")
    assert [c for c in sandbox_calls(sandbox)[len(before) :] if not c.split(":")[1].startswith(reads)] == []
    assert aws("s3").list_buckets()["Buckets"] == []

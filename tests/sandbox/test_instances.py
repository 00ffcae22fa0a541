"""Instances: a variant runs a serving process per instance (up to the cap), requests are spread over
them, rolling updates replace them batch by batch, and capacity changes and autoscaling apply."""

from __future__ import annotations

import pytest

from mlflow_plugins.sandbox.sagemaker._serving_host import MAX_PROCESSES_PER_VARIANT
from tests.processes import exits_within
from tests.sandbox.test_endpoints import BAKING
from tests.sandbox.test_serving import host, invoke, variant


@pytest.fixture(autouse=True)
def full_cap(aws, sandbox):
    """The suite's sandbox runs one process per variant (tests/conftest.py); here instances are
    the subject, so the sandbox's own default cap applies."""
    sandbox.control.hosting(instance_cap=MAX_PROCESSES_PER_VARIANT)


def processes(sandbox, config, name="main"):
    return [c for k, c in host(sandbox).containers.items() if k[:3] == ("ep", config, name)]


def serve(served, count, config="c", model="model-a"):
    served("sagemaker").create_endpoint_config(
        EndpointConfigName=config, ProductionVariants=[variant("main", model, count=count)]
    )


def test_each_instance_is_a_process_and_requests_are_spread_over_them(served, sandbox):
    serve(served, 2)
    served("sagemaker").create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    running = processes(sandbox, "c")
    assert len({c.process.pid for c in running}) == 2
    for _ in range(6):
        invoke(served, "ep")
    assert sorted(c.answered for c in running) == [3, 3]


def test_instances_above_the_cap_are_described_but_served_by_the_cap(served, sandbox):
    serve(served, MAX_PROCESSES_PER_VARIANT + 2)
    served("sagemaker").create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    described = served("sagemaker").describe_endpoint(EndpointName="ep")["ProductionVariants"][0]
    assert described["CurrentInstanceCount"] == MAX_PROCESSES_PER_VARIANT + 2
    assert len(processes(sandbox, "c")) == MAX_PROCESSES_PER_VARIANT


def test_a_capacity_change_starts_and_stops_processes(served, sandbox):
    sm = served("sagemaker")
    serve(served, 1)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    first = processes(sandbox, "c")[0].process.pid
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "main", "DesiredInstanceCount": 2}]
    )
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    served.wait("endpoint_in_service", EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert len(processes(sandbox, "c")) == 2
    for _ in range(4):
        invoke(served, "ep")
    assert all(c.answered == 2 for c in processes(sandbox, "c"))
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "main", "DesiredInstanceCount": 1}]
    )
    served.wait("endpoint_in_service", EndpointName="ep")
    assert [c.process.pid for c in processes(sandbox, "c")] == [first]


def test_a_rolling_update_replaces_processes_batch_by_batch(served, sandbox):
    sm = served("sagemaker")
    serve(served, 2, "v1", "model-a")
    serve(served, 2, "v2", "model-b")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="v1")
    served.wait("endpoint_in_service", EndpointName="ep")
    old = [c.process.pid for c in processes(sandbox, "v1")]
    policy = {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
            "WaitIntervalInSeconds": 600,
        }
    }
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2", DeploymentConfig=policy)
    served.custom_waiter("Baking", BAKING).wait(EndpointName="ep")
    # The first batch baking: one new instance serves, one old instance was retired.
    assert (len(processes(sandbox, "v2")), len(processes(sandbox, "v1"))) == (1, 1)
    served.wait("endpoint_in_service", EndpointName="ep")
    assert (len(processes(sandbox, "v2")), processes(sandbox, "v1")) == (2, [])
    assert all(exits_within(pid, 15) for pid in old)


def test_autoscaling_brings_the_instance_count_into_the_registered_range(served, sandbox):
    serve(served, 1)
    served("sagemaker").create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    served("application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/ep/variant/main",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=2,
        MaxCapacity=4,
    )
    served.wait("endpoint_in_service", EndpointName="ep")
    described = served("sagemaker").describe_endpoint(EndpointName="ep")["ProductionVariants"][0]
    assert (described["DesiredInstanceCount"], described["CurrentInstanceCount"]) == (2, 2)
    assert len(processes(sandbox, "c")) == 2


def test_the_cap_is_a_setting_of_at_least_one(tmp_path):
    from mlflow_plugins.sandbox.sagemaker._endpoint import Variant
    from mlflow_plugins.sandbox.sagemaker._hosting import HealthSwitches
    from mlflow_plugins.sandbox.sagemaker._serving_host import ServingHost, processes_for

    with pytest.raises(ValueError, match="instance_cap=0"):
        ServingHost(HealthSwitches(), str(tmp_path), cap=0)
    instances = Variant("v", "m", None, "ml.m5.large", None, 1.0, 5)
    serverless = Variant("s", "m", None, None, {"MemorySizeInMB": 2048, "MaxConcurrency": 5}, 1.0, 0)
    assert [processes_for(instances, 5, cap) for cap in (1, 2, 3)] == [1, 2, 3]
    assert processes_for(instances, 0) == 0 and processes_for(serverless, 0) == 1

"""Sandbox endpoints that really serve: invoke_endpoint reaches serving-runtime processes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import mlflow.pyfunc
import pytest
from botocore.exceptions import ClientError, WaiterError

from mlflow_plugins.packaging import model_archive
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.processes import exits_within
from tests.serving.conftest import delivery_frame

ROWS, _ = delivery_frame(n=5, seed=3)
PAYLOAD = json.dumps({"dataframe_split": json.loads(ROWS.to_json(orient="split", index=False))})


def variant(name, model, weight=1.0, count=1):
    return {
        "VariantName": name,
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": count,
        "InitialVariantWeight": weight,
    }


def local_predictions(model_dir: Path) -> list:
    return mlflow.pyfunc.load_model(str(model_dir)).predict(ROWS).tolist()


def invoke(aws, endpoint, **extra):
    reply = aws("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, Body=PAYLOAD, ContentType="application/json", **extra
    )
    return reply["InvokedProductionVariant"], json.loads(reply["Body"].read())["predictions"]


def host(sandbox):
    return sandbox._server.state.host


def test_an_endpoint_serves_the_model_from_its_model_data(served, sandbox, model_archives):
    sm = served("sagemaker")
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant("main", "model-a")])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    name, predictions = invoke(served, "ep")
    assert name == "main"
    assert predictions == local_predictions(model_archives["a"][0])
    reply = served("sagemaker-runtime").invoke_endpoint(
        EndpointName="ep", Body=ROWS.to_csv(index=False), ContentType="text/csv", Accept="text/csv"
    )
    assert reply["ContentType"] == "text/csv"
    assert [int(x) for x in reply["Body"].read().decode().split()] == predictions

    pids = [c.process.pid for c in host(sandbox).containers.values()]
    assert len(pids) == 1
    sm.delete_endpoint(EndpointName="ep")
    served.wait("endpoint_deleted", EndpointName="ep")
    assert all(exits_within(pid, 15) for pid in pids)


def test_traffic_follows_variant_weights_and_target_variant(served, model_archives):
    sm = served("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="c", ProductionVariants=[variant("blue", "model-a", 3.0), variant("green", "model-b", 1.0)]
    )
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    hits = Counter(invoke(served, "ep")[0] for _ in range(80))
    assert set(hits) == {"blue", "green"} and hits["blue"] > hits["green"]
    name, predictions = invoke(served, "ep", TargetVariant="green")
    assert name == "green" and predictions == local_predictions(model_archives["b"][0])
    with pytest.raises(ClientError, match="not a production variant"):
        invoke(served, "ep", TargetVariant="purple")


def test_a_blue_green_update_moves_traffic_to_the_new_model(served, sandbox, model_archives):
    sm = served("sagemaker")
    sm.create_endpoint_config(EndpointConfigName="v1", ProductionVariants=[variant("main", "model-a")])
    sm.create_endpoint_config(EndpointConfigName="v2", ProductionVariants=[variant("main", "model-b")])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="v1")
    served.wait("endpoint_in_service", EndpointName="ep")
    old = [c.process.pid for c in host(sandbox).containers.values()]
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2")
    assert invoke(served, "ep")[1] == local_predictions(model_archives["a"][0])  # still the old fleet
    served.wait("endpoint_in_service", EndpointName="ep")
    assert invoke(served, "ep")[1] == local_predictions(model_archives["b"][0])
    assert all(exits_within(pid, 15) for pid in old)


def test_a_model_that_cannot_load_fails_the_endpoint_with_the_reason(served, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {}\n")
    served("s3").put_object(Bucket="models", Key="broken/model.tar.gz", Body=model_archive(broken))
    sm = served("sagemaker")
    sm.create_model(
        ModelName="model-broken",
        ExecutionRoleArn=EXECUTION_ROLE_ARN,
        PrimaryContainer={"Image": "ops:1", "ModelDataUrl": "s3://models/broken/model.tar.gz"},
    )
    sm.create_model(
        ModelName="model-missing",
        ExecutionRoleArn=EXECUTION_ROLE_ARN,
        PrimaryContainer={"Image": "ops:1", "ModelDataUrl": "s3://models/nothing/model.tar.gz"},
    )
    for model, words in (("model-broken", "failed to load"), ("model-missing", "Failed to download model data")):
        sm.create_endpoint_config(EndpointConfigName=model, ProductionVariants=[variant("main", model)])
        sm.create_endpoint(EndpointName=model, EndpointConfigName=model)
        with pytest.raises(WaiterError):
            served.wait("endpoint_in_service", EndpointName=model)
        described = sm.describe_endpoint(EndpointName=model)
        assert described["EndpointStatus"] == "Failed" and words in described["FailureReason"]


def test_a_container_error_is_a_model_error(served):
    sm = served("sagemaker")
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant("main", "model-a")])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    with pytest.raises(ClientError) as caught:
        served("sagemaker-runtime").invoke_endpoint(
            EndpointName="ep", Body='{"rows": []}', ContentType="application/json"
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError" and error["OriginalStatusCode"] == 400
    with pytest.raises(ClientError, match="Endpoint nope of account 123456789012 not found"):
        invoke(served, "nope")


def test_a_multi_model_endpoint_loads_models_on_first_invoke(served, model_archives):
    sm = served("sagemaker")
    sm.create_model(
        ModelName="mme",
        ExecutionRoleArn=EXECUTION_ROLE_ARN,
        PrimaryContainer={"Image": "ops:1", "Mode": "MultiModel", "ModelDataUrl": "s3://models/mme/"},
    )
    sm.create_endpoint_config(EndpointConfigName="mme", ProductionVariants=[variant("main", "mme")])
    sm.create_endpoint(EndpointName="mme", EndpointConfigName="mme")
    served.wait("endpoint_in_service", EndpointName="mme")
    for name in ("a", "b", "a"):
        assert invoke(served, "mme", TargetModel=f"{name}.tar.gz")[1] == local_predictions(model_archives[name][0])
    with pytest.raises(ClientError, match="set TargetModel"):
        invoke(served, "mme")
    with pytest.raises(ClientError, match="Failed to download model data"):
        invoke(served, "mme", TargetModel="zzz.tar.gz")


def test_reset_stops_every_container(served, sandbox):
    sm = served("sagemaker")
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant("main", "model-a")])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    pids = [c.process.pid for c in host(sandbox).containers.values()]
    sandbox.control.reset()
    assert host(sandbox).containers == {}
    assert all(exits_within(pid, 15) for pid in pids)


def test_hosting_without_processes_serves_the_control_plane_alone_until_a_reset(served, sandbox):
    from mlflow_plugins.sandbox.control import SandboxControlError

    assert sandbox.control.hosting(processes=False, instance_cap=2) == {"processes": False, "instance_cap": 2}
    sm = served("sagemaker")
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant("main", "model-a", count=3)])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    served.wait("endpoint_in_service", EndpointName="ep")
    assert host(sandbox).containers == {}
    with pytest.raises(ClientError, match="runs no serving processes"):
        invoke(served, "ep")
    # The archive is still fetched: a model whose archive is missing fails as with processes.
    sm.create_model(
        ModelName="gone",
        ExecutionRoleArn=EXECUTION_ROLE_ARN,
        PrimaryContainer={
            **sm.describe_model(ModelName="model-a")["PrimaryContainer"],
            "ModelDataUrl": "s3://nope/x.tar.gz",
        },
    )
    sm.create_endpoint_config(EndpointConfigName="g", ProductionVariants=[variant("main", "gone")])
    sm.create_endpoint(EndpointName="bad", EndpointConfigName="g")
    with pytest.raises(WaiterError):
        served.wait("endpoint_in_service", EndpointName="bad")
    assert "Failed to download model data" in sm.describe_endpoint(EndpointName="bad")["FailureReason"]

    for body in ({}, {"processes": "no"}, {"instance_cap": 0}, {"cap": 1}):
        with pytest.raises(SandboxControlError, match="hosting takes processes"):
            sandbox.control._call("POST", "hosting", body)
    sandbox.control.reset()
    assert (host(sandbox).processes, host(sandbox).cap) == (True, host(sandbox).default_cap)

"""Sandbox parts on their own: the scheduler and processes, constraints, wire, the shape check."""

from __future__ import annotations

import threading

import botocore.session
import pytest

from mlflow_plugins.sandbox import _constraints, _wire
from mlflow_plugins.sandbox._clock import Process, Scheduler, Wait
from mlflow_plugins.sandbox._faults import Fault
from mlflow_plugins.sandbox.sagemaker._endpoint import Fleet, Variant
from mlflow_plugins.sandbox.sagemaker._rollout import traffic_steps
from tests.conftest import ShapeViolation, check_response

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture
def scheduler():
    s = Scheduler(threading.RLock(), time_scale=0.001)
    yield s
    s.stop()


def test_scheduled_calls_run_in_due_order_and_cancelled_ones_do_not(scheduler):
    ran, done = [], threading.Event()
    scheduler.call_later(30, lambda: ran.append("late"))
    dropped = scheduler.call_later(10, lambda: ran.append("cancelled"))
    scheduler.call_later(5, lambda: ran.append("early"))
    scheduler.call_later(40, done.set)
    scheduler.cancel(dropped)
    assert done.wait(5)
    assert ran == ["early", "late"]


def test_a_process_can_be_interrupted_at_its_wait(scheduler):
    seen, done = [], threading.Event()

    def body():
        seen.append("started")
        try:
            yield Wait(10_000)
            seen.append("waited")
        except KeyError as error:
            seen.append(f"interrupted {error}")
        done.set()

    with scheduler.lock:
        process = Process(scheduler, body()).start()
        assert seen == ["started"]  # the first step runs in the caller
        process.interrupt(KeyError("alarm"))
    assert done.wait(5) and process.done
    assert seen == ["started", "interrupted 'alarm'"]


def test_traffic_steps_follow_the_routing_config():
    fleet = Fleet("c", [Variant("v", "m", None, "ml.m5.large", None, 1.0, 4)], [], None, None)
    canary = {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}
    linear = {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 30}}
    assert traffic_steps({"Type": "ALL_AT_ONCE"}, fleet) == [1.0]
    assert traffic_steps(canary, fleet) == [0.25, 1.0]
    assert traffic_steps(linear, fleet) == pytest.approx([0.3, 0.6, 0.9, 1.0])


def test_constraints_report_every_violation_as_aws_does():
    shape = SAGEMAKER.operation_model("CreateEndpoint").input_shape
    errors = _constraints.violations(shape, {"EndpointName": "x" * 64 + "_", "EndpointConfigName": "ok"})
    assert len(errors) == 2
    assert "Value '" in errors[0] and "at 'endpointName'" in errors[0]
    assert _constraints.message(errors).startswith("2 validation errors detected: ")
    assert _constraints.violations(shape, {"EndpointName": "ok-1", "EndpointConfigName": "c"}) == []


def test_wire_identifies_json_query_and_rest_operations():
    json_call = _wire.identify({"HTTP_X_AMZ_TARGET": "SageMaker.CreateEndpoint"})
    assert (json_call.service, json_call.operation, json_call.protocol) == ("sagemaker", "CreateEndpoint", "json")
    auth = "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host"
    rest = _wire.identify(
        {"HTTP_AUTHORIZATION": auth, "REQUEST_METHOD": "POST", "PATH_INFO": "/endpoints/ep/invocations"}
    )
    assert (rest.service, rest.operation) == ("sagemaker-runtime", "InvokeEndpoint")
    iam_auth = auth.replace("/sagemaker/", "/iam/")
    query = _wire.identify({"HTTP_AUTHORIZATION": iam_auth, "QUERY_STRING": "Action=ListRoles"})
    assert (query.service, query.operation, query.protocol) == ("iam", "ListRoles", "query")


def test_fault_responses_use_the_protocol_throttling_code():
    assert Fault("X").response("json")[:2] == (400, "ThrottlingException")
    assert Fault("X").response("query")[:2] == (400, "Throttling")
    assert Fault("X", kind="5xx", status=503).response("json")[:2] == (503, "InternalFailure")


def test_the_shape_check_fails_on_a_bad_response():
    model = SAGEMAKER.operation_model("DescribeEndpoint")
    good = {
        "EndpointName": "ep",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/ep",
        "EndpointStatus": "InService",
        "CreationTime": 0,
        "LastModifiedTime": 0,
    }
    check_response(dict(good), b"", model)
    with pytest.raises(ShapeViolation, match="EndpointStatus"):
        check_response({k: v for k, v in good.items() if k != "EndpointStatus"}, b"", model)
    with pytest.raises(ShapeViolation, match="CurrentWieght"):
        raw = b'{"ProductionVariants": [{"VariantName": "v", "CurrentWieght": 1}]}'
        check_response(dict(good), raw, model)

"""Shared fixtures: one AWS sandbox per test session, reset before every test that uses it.

Every boto3 client made by the ``aws`` fixture validates each response against its
operation's output shape (botocore's Stubber validator) and, for JSON protocols, rejects keys
the shape does not have, so every sandbox test is also a shape test.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.waiter
import pytest
from botocore.model import Shape
from botocore.validate import validate_parameters

from mlflow_plugins.sandbox import Sandbox
from mlflow_plugins.sandbox._launcher import preload

# The controllers of tests/hooks (``hooks run``) are forked from the sandbox's warm launcher too,
# with what they import already imported (4 s of CPU a start otherwise).
preload(
    "mlflow_plugins.cli.hooks",
    "mlflow.tracking",
    "sqlalchemy",
    "registry_hooks.controller",
    "registry_hooks.receiver",
    "registry_hooks.reconcile",
    "registry_hooks.registry",
    "registry_hooks.targets",
)

# The modules that take longest run first (sums of `--durations=0` from whole runs on 2026-12-02,
# 2 workers, taken before that day's speed-ups, which moved them by up to a third; the order is what
# counts): with `--dist loadscope` a module is one unit of work, and xdist hands them out in collection order
# (`--no-loadscope-reorder` in setup.cfg), so the longest start first and short ones fill in at the
# end, instead of a 100 s module starting last while the other worker has nothing left to do.
LONGEST_FIRST = (
    "tests/contract/test_fault_matrix.py",  # 170 s
    "tests/deploy/test_sagemaker_target.py",  # 130 s
    "tests/project/test_mlflow_run.py",  # 137 s
    "tests/test_cli.py",  # 133 s, 106 of them the main job
    "tests/hooks/test_controller.py",  # 115 s
    "tests/contract/test_target_contract.py",  # 112 s
    "tests/hooks/test_page.py",  # 100 s
    "tests/hooks/test_crash_and_replicas.py",  # 95 s
    "tests/deploy/test_sagemaker_variants.py",  # 70 s
    "tests/batch/test_transform.py",  # 70 s (measured alone, 2026-12-02)
    "tests/hooks/test_drift_loop.py",  # 45 s, its first test a controller's whole drift loop
    "tests/hooks/test_secrets.py",  # 54 s
    "tests/serving/test_ecs_mode.py",  # 50 s
    "tests/hooks/test_operations.py",  # 45 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep their order


TIME_SCALE = 0.002  # a 4-minute endpoint creation takes 0.48 s
FAST = {"Delay": 0.05, "MaxAttempts": 600}


class ShapeViolation(AssertionError):
    pass


def check_response(parsed: dict[str, Any], raw: bytes | None, model: Any) -> None:
    """Fail when a response breaks its output shape (types, required members, unknown keys)."""
    shape = model.output_shape
    body = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
    if shape is None:
        return
    try:
        validate_parameters(body, shape)
    except Exception as error:  # botocore's ParamValidationError
        raise ShapeViolation(f"{model.name}: {error}") from None
    protocol = model.service_model.protocol
    if protocol == "json" and raw:
        unknown = unknown_keys(json.loads(raw), shape)
        if unknown:
            raise ShapeViolation(f"{model.name}: keys not in the output shape: {unknown}")


def unknown_keys(value: Any, shape: Shape, path: str = "") -> list[str]:
    if shape.type_name == "structure" and isinstance(value, dict):
        found = [f"{path}.{k}" for k in value if k not in shape.members]
        for key, item in value.items():
            if key in shape.members:
                found += unknown_keys(item, shape.members[key], f"{path}.{key}")
        return found
    if shape.type_name == "list" and isinstance(value, list):
        return [k for i, item in enumerate(value) for k in unknown_keys(item, shape.member, f"{path}[{i}]")]
    if shape.type_name == "map" and isinstance(value, dict):
        return [k for key, item in value.items() for k in unknown_keys(item, shape.value, f"{path}.{key}")]
    return []


def _validate_hook(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
    # boto3 decodes IAM's policy documents into dicts before this hook runs; IAM is moto's own.
    if http_response.status_code >= 300 or model.service_model.service_name == "iam":
        return
    # Only the JSON protocol's raw body is read (for unknown keys): reading a streaming body
    # (InvokeEndpoint's Body) here would leave nothing for the caller.
    raw = http_response.content if model.service_model.protocol == "json" else None
    check_response(parsed, raw, model)


@pytest.fixture(scope="session")
def sandbox():
    # One serving process per variant whatever its instance count: each costs seconds of CPU to
    # start, and only tests/sandbox/test_instances.py is about instances (it raises the cap).
    with Sandbox(port=0, time_scale=TIME_SCALE, instance_cap=1) as box:
        yield box


class Aws:
    """boto3 clients pointed at the sandbox, each validating its responses."""

    def __init__(self, box: Sandbox) -> None:
        self.sandbox = box
        self.session = boto3.Session(
            aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1"
        )
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            client = self.session.client(service, endpoint_url=self.sandbox.url)
            client.meta.events.register("after-call", _validate_hook)
            self._clients[service] = client
        return self._clients[service]

    def wait(self, waiter: str, service: str = "sagemaker", **kwargs: Any) -> None:
        self(service).get_waiter(waiter).wait(WaiterConfig=FAST, **kwargs)

    def custom_waiter(self, name: str, config: dict[str, Any], service: str = "sagemaker") -> Any:
        model = botocore.waiter.WaiterModel({"version": 2, "waiters": {name: config}})
        return botocore.waiter.create_waiter_with_client(name, model, self(service))


@pytest.fixture
def aws(sandbox, monkeypatch):
    sandbox.reset()
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    # The sandbox's endpoints change state in fractions of a second (TIME_SCALE): a deploy polls
    # every 0.1 s instead of botocore's 15 s, which a test that did not set it waited out (15 s per
    # create or delete; subprocesses inherit it).
    monkeypatch.setenv("MLFLOW_SAGEMAKER_OPS_WAIT_DELAY", "0.1")
    return Aws(sandbox)


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory):
    """A real ``mlflow server`` (sqlite store, artifacts served over HTTP), for the session."""
    from tests.serving.conftest import BIN, Server, free_port

    root = tmp_path_factory.mktemp("tracking")
    port = free_port()
    server = Server(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        port,
        {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    server.wait_ready("/health")
    yield server
    server.stop()


@pytest.fixture
def tracking(tracking_server, monkeypatch):
    """This test logs to the session's tracking server (in-process and in subprocesses)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    mlflow.set_tracking_uri(tracking_server.url)
    yield tracking_server.url
    mlflow.set_tracking_uri(None)

"""Fixtures for the deployment targets: two model versions, the ``mlflow deployments`` CLI against
the sandbox (in this process, or as a subprocess for the tests of the entry points), and what is
left in the sandbox after a test."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.serving.conftest import save_sklearn_model, sklearn_model  # noqa: F401  (sklearn_model: a shared fixture)

MLFLOW = str(Path(sys.executable).parent / "mlflow")
ROLE = f"execution_role_arn={EXECUTION_ROLE_ARN}"


def alarm_while_baking(aws, endpoint: str, alarm: str, create: bool = True) -> threading.Thread:
    """A thread (not started) that sets ``alarm`` to ALARM once ``endpoint``'s update bakes; with
    ``create``, the alarm is made first (5XX errors of the endpoint, as a user's own alarm)."""
    if create:
        aws("cloudwatch").put_metric_alarm(
            AlarmName=alarm,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )

    def trip() -> None:
        aws.custom_waiter("Baking", BAKING).wait(EndpointName=endpoint)
        aws("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="errors")

    return threading.Thread(target=trip)


BAKING = {
    "operation": "DescribeEndpoint",
    "delay": 0.05,
    "maxAttempts": 600,
    "acceptors": [
        {
            "matcher": "pathAny",
            "expected": "Baking",
            "state": "success",
            "argument": "PendingDeploymentSummary.ProductionVariants[].VariantStatus[].Status",
        }
    ],
}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    return {"v1": str(save_sklearn_model(root / "v1", seed=1)), "v2": str(save_sklearn_model(root / "v2", seed=2))}


@dataclass
class Ran:
    """What an ``mlflow deployments`` command did: as ``subprocess.CompletedProcess`` reports it."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_in_process(args: list[str]) -> Ran:
    """``mlflow deployments ARGS`` through MLflow's own click command in this process: the same
    argument parsing, plugin loading and output, without a new interpreter's ~4 s of imports.
    stderr holds what the CLI would print there: the deploy's progress (the ``mlflow_plugins``
    logger, which a CLI process sends to stderr) and, for an uncaught error, its traceback."""
    from mlflow.cli import cli as mlflow_cli

    progress = io.StringIO()
    handler = logging.StreamHandler(progress)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("mlflow_plugins")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result = CliRunner().invoke(mlflow_cli, ["deployments", *args], catch_exceptions=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    stderr = result.stderr + progress.getvalue()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Ran(["mlflow", "deployments", *args], result.exit_code, result.stdout, stderr)


def run_in_subprocess(args: list[str]) -> subprocess.CompletedProcess:
    """``mlflow deployments ARGS`` as a user runs it: the entry point, in a process of its own."""
    return subprocess.run([MLFLOW, "deployments", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli(aws, sandbox):
    """``mlflow deployments`` in this process (see :func:`run_in_process`); :func:`cli_process`
    runs it as a subprocess, for the few tests that prove the entry points."""

    def run(*args: str, check: bool = True) -> Ran:
        result = run_in_process(list(args))
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    return run


@pytest.fixture
def cli_process(aws, sandbox):

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = run_in_subprocess(list(args))
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    return run


def leftovers(aws) -> dict[str, list[str]]:
    sm = aws("sagemaker")
    return {
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
    }


def mlflow_predictions(model_dir: str, rows) -> list:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_dir).predict(rows).tolist()

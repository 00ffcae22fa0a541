"""Fixtures for the deployment targets: two model versions, the ``mlflow deployments`` CLI as a
subprocess against the sandbox, and what is left in the sandbox after a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.serving.conftest import save_sklearn_model, sklearn_model  # noqa: F401  (sklearn_model: a shared fixture)

MLFLOW = str(Path(sys.executable).parent / "mlflow")
ROLE = f"execution_role_arn={EXECUTION_ROLE_ARN}"
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


@pytest.fixture
def cli(aws, sandbox, monkeypatch):
    monkeypatch.setenv("MLFLOW_SAGEMAKER_OPS_WAIT_DELAY", "0.1")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([MLFLOW, "deployments", *args], capture_output=True, text=True, timeout=300)
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

"""``-t sagemaker`` reaches the suite's client after pip install . and pip install -e .; it can be
switched off with MLFLOW_SAGEMAKER_OPS_OVERRIDE=0."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

ROOT = Path(__file__).resolve().parents[2]
MLFLOW = str(Path(sys.executable).parent / "mlflow")


@pytest.mark.parametrize("editable", [False, True], ids=["pip install .", "pip install -e ."])
def test_both_install_modes_put_the_hook_in_site_packages(tmp_path, editable):
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    mode = ["-e", str(ROOT)] if editable else [str(ROOT)]
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", *mode], check=True, capture_output=True, cwd=tmp_path
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pth = Path(site) / "mlflow_sagemaker_ops.pth"
    assert pth.exists()
    assert "import mlflow_plugins._override" in pth.read_text()
    # The hook is in place at start, without importing mlflow.
    probe = (
        "import sys; print(any(type(f).__name__ == '_RebindSageMaker' for f in sys.meta_path), 'mlflow' in sys.modules)"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]


def test_the_sagemaker_target_name_reaches_the_suite(aws, tmp_path):
    ours = subprocess.run([MLFLOW, "deployments", "help", "-t", "sagemaker"], capture_output=True, text=True)
    assert ours.stdout.startswith("Target: sagemaker-ops")
    off = subprocess.run(
        [MLFLOW, "deployments", "help", "-t", "sagemaker"],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_SAGEMAKER_OPS_OVERRIDE": "0"},
    )
    assert "Target: sagemaker-ops" not in off.stdout and "SageMaker" in off.stdout


def test_create_with_the_sagemaker_target_uses_the_suite(aws, sklearn_model):
    created = subprocess.run(
        [
            MLFLOW,
            "deployments",
            "create",
            "-t",
            "sagemaker",
            "--name",
            "churn",
            "-m",
            str(sklearn_model),
            "-C",
            f"execution_role_arn={EXECUTION_ROLE_ARN}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert created.returncode == 0, created.stderr
    tags = aws("sagemaker").list_tags(
        ResourceArn=aws("sagemaker").describe_endpoint(EndpointName="churn")["EndpointArn"]
    )
    assert {"Key": "mlflow-sagemaker-ops:managed", "Value": "true"} in tags["Tags"]

"""The ``mlflow-sagemaker-ops`` console script, run as a subprocess."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import boto3
import pytest

from mlflow_plugins.sandbox import SandboxControl

CLI = shutil.which("mlflow-sagemaker-ops", path=os.path.dirname(sys.executable)) or "mlflow-sagemaker-ops"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["sandbox", "--help"],
        ["demo", "--help"],
        ["serve", "--help"],
        ["build-image", "--help"],
        ["hooks", "--help"],
        ["hooks", "run", "--help"],
        ["hooks", "log", "--help"],
    ],
)
def test_every_command_has_help(args):
    """The top-level help through the console script in a process of its own; each command's
    through the same click group in this process (each interpreter costs seconds of imports)."""
    if args == ["--help"]:
        result = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        output = result.stdout
    else:
        from click.testing import CliRunner

        from mlflow_plugins.cli import cli

        ran = CliRunner().invoke(cli, args, prog_name="mlflow-sagemaker-ops")
        assert ran.exit_code == 0, ran.output
        output = ran.output
    assert "Usage: mlflow-sagemaker-ops" in output


def test_sandbox_command_serves_aws_until_terminated():
    process = subprocess.Popen(
        [CLI, "sandbox", "--port", "0", "--time-scale", "0.001"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()
        url = re.search(r"listening on (http://\S+)", first).group(1)
        assert SandboxControl(url).health()["status"] == "ok"
        sts = boto3.client(
            "sts", endpoint_url=url, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
        )
        assert sts.get_caller_identity()["Account"] == "123456789012"
        iam = boto3.client(
            "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
        )
        assert iam.get_role(RoleName="SageMakerExecutionRole")["Role"]["RoleName"] == "SageMakerExecutionRole"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "AWS sandbox stopped." in out


def test_the_main_job_runs_end_to_end_on_embedded_defaults():
    result = subprocess.run([CLI, "demo", "--time-scale", "0.001"], capture_output=True, text=True, timeout=450)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("train: xgboost on 6400 rows") and "registered truck-delay version 1" in line for line in lines
    ), lines
    # the drift loop: drifted traffic, then monitor -> retrain -> evaluate runs, each linked to the one before
    assert "traffic: 800 deliveries of weeks 4-7 (the routes drift from week 4) sent to the endpoint" in lines, lines
    loop = [line for line in lines if line.startswith("drift loop: ")]
    assert [line.split()[2] for line in loop] == ["monitor", "retrain", "evaluate"], lines
    assert re.fullmatch(r"drift loop: monitor run \w{8}: drift in [\w,]+ \(\d+ rows\)", loop[0]), loop
    assert loop[1].endswith("rehearsal from version 1: registered truck-delay version 2"), loop
    assert loop[2].endswith("version 2 pass; promoted to Production"), loop
    assert any(
        line.startswith("version tags: v1 monitor.verdict drift (") and "v2 evaluation.verdict pass (" in line
        for line in lines
    ), lines
    assert any(
        line.startswith("registry hooks: mlflow server --app-name registry-hooks on http://127.0.0.1:")
        for line in lines
    )
    assert "transition: truck-delay version 1 -> Production (as the UI does it)" in lines, lines
    assert any(
        line.startswith(
            "deployed: endpoint demo is InService on version 1; version 1 tags: status IN_SERVICE, "
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/demo"
        )
        for line in lines
    ), lines
    assert any(
        re.fullmatch(r"predict: variant primary of the serving runtime answered \[[01], [01]\] \(1 = late\)", line)
        for line in lines
    ), lines
    assert any(
        line.startswith("canary to version 2: version 2 IN_SERVICE, version 1 RETIRED; predict: [") for line in lines
    )
    assert any(
        line.startswith("canary back to version 1: ROLLED_BACK: ") and "demo-endpoint-5xx" in line for line in lines
    )
    assert "rollback: InService, still serving version 2" in lines, lines
    assert any(
        line.startswith("leave rule: version 2 DELETED: left Production; endpoint demo deleted")
        and line.endswith("endpoints left: 0")
        for line in lines
    ), lines
    audit = [
        line.split()[2:5] + [line.split(" via ")[1].split(" (")[0]]
        for line in lines
        if line.startswith("audit: ") and not line.split()[2].startswith("loop-")
    ]
    steps = [
        [line.split()[2], line.split()[4]]
        for line in lines
        if line.startswith("audit: ") and line.split()[2].startswith("loop-")
    ]
    assert ["loop-monitor", "drift"] in steps and ["loop-retrain", "succeeded"] in steps, steps
    assert ["loop-evaluate", "promoted"] in steps, steps
    assert audit == [
        ["create", "v1", "succeeded", "app:transition:Production"],
        ["update", "v2", "succeeded", "app:transition:Production"],  # the loop's promotion
        ["update", "v1", "rolled-back", "app:transition:Production"],
        ["delete", "v2", "succeeded", "app:transition:Archived"],
    ], audit
    assert lines[-1] == "Main job finished."

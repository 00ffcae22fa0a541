"""``export --format cdk``: the CDK app of L1 constructs synthesizes (aws-cdk-lib's own synth, the
one `cdk synth` runs) to a template equal in resources and outputs to the CloudFormation export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mlflow_plugins.iac import app_files
from tests.iac.test_export import ECS, ROLE, SAGEMAKER, network, target


def synthesized(template: dict, tmp_path, stack: str) -> dict:
    for name, text in app_files(template, stack).items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "CDK_OUTDIR": str(tmp_path / "cdk.out"),
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp_path / "cdk.out" / f"{stack}.template.json").read_text())


def without_metadata(resources: dict) -> dict:
    return {k: {f: v for f, v in r.items() if f != "Metadata"} for k, r in resources.items()}


def test_the_cdk_apps_synthesize_to_the_exported_resources(aws, models, tmp_path):
    exports = {
        "churn-sagemaker": target("sagemaker").export(
            "churn", models["v1"], {**ROLE, **SAGEMAKER["canary"], **SAGEMAKER["capture and vpc"]}
        ),
        "churn-ecs": target("ecs").export("churn", models["v1"], {**network(aws), **ECS["scaled"]}),
    }
    for stack, template in exports.items():
        (tmp_path / stack).mkdir()
        made = synthesized(template, tmp_path / stack, stack)
        assert without_metadata(made["Resources"]) == template["Resources"], stack
        assert made["Outputs"] == template["Outputs"] and made["Parameters"] == template["Parameters"], stack
        assert made["Metadata"]["mlflow-sagemaker-ops"] == template["Metadata"]["mlflow-sagemaker-ops"]

"""``mlflow-sagemaker-ops hooks plan --policy FILE``: what the controller would change now, rule by
rule, against a real MLflow server's registry and the sandbox, with no write; then the
controller's own deploy (the rule's target, as the reconciler drives it) does what it said."""

from __future__ import annotations

import json
import logging
import os

import pytest
from click.testing import CliRunner

from mlflow_plugins.cli import cli
from registry_hooks import policy as policy_file
from registry_hooks.targets import Targets
from tests.contract.conftest import sandbox_calls
from tests.hooks.conftest import policy_text

READS = ("Describe", "List", "Get", "Head")


@pytest.fixture
def mlflow_uris():
    """``hooks plan --tracking-uri`` sets MLflow's process-wide URIs (and their environment
    variables), as the CLI process would: put them back for the tests after it in this worker."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    variables = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = tracking_utils._tracking_uri, registry_utils._registry_uri, [os.environ.get(v) for v in variables]
    yield
    tracking_utils._tracking_uri, registry_utils._registry_uri = before[:2]
    for variable, value in zip(variables, before[2]):
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = value


def hooks_plan(policy, registry, *extra: str) -> str:
    result = CliRunner().invoke(
        cli, ["hooks", "plan", "--policy", str(policy), "--tracking-uri", registry.url, *extra], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def writes_during(sandbox, action) -> list[str]:
    before = sandbox_calls(sandbox)
    action()
    calls = sandbox_calls(sandbox)[len(before) :]
    return [c.split(":", 1)[1] for c in calls if not c.split(":", 1)[1].startswith(READS)]


def test_hooks_plan_says_what_the_controller_then_does_and_writes_nothing(
    registry, aws, sandbox, tmp_path, mlflow_uris
):
    model = registry.new_model(versions=2)
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text("churn-plan", model, on_leave="delete"))
    rule = policy_file.load(str(path)).rules[0]
    target = Targets(say=logging.getLogger("tests.hooks").info)(rule)

    def deploy(version: str) -> None:
        target.deploy(target.observe(), f"models:/{model}/{version}")

    assert "churn-plan: no change" in hooks_plan(path, registry)

    registry.transition(model, "1", "Production")
    said: list[str] = []
    assert writes_during(sandbox, lambda: said.append(hooks_plan(path, registry))) == []
    for resource in ("S3 archive", "SageMaker model", "endpoint config", "SageMaker endpoint churn-plan"):
        assert f"create   {resource}" in said[0], said[0]
    deploy("1")
    assert "churn-plan: no change" in hooks_plan(path, registry)  # it serves version 1

    registry.transition(model, "2", "Production")
    said = [hooks_plan(path, registry)]
    # A models:/ download carries its version (MLflow's registered_model_meta): a new digest.
    assert "replace  SageMaker model churn-plan-" in said[0], said[0]
    assert "update   SageMaker endpoint churn-plan (blue/green all at once, 300 s bake" in said[0], said[0]
    written = writes_during(sandbox, lambda: deploy("2"))
    assert {"CreateModel", "CreateEndpointConfig", "UpdateEndpoint"} <= set(written)
    plans = [json.loads(line) for line in hooks_plan(path, registry, "--json").splitlines()]
    assert plans == [{"rule": "churn-plan", "target": "sagemaker", "deployment": "churn-plan", "changes": []}]

    registry.transition(model, "2", "Archived")
    said = [hooks_plan(path, registry)]
    assert "delete   deployment churn-plan: no version holds Production (on_leave: delete)" in said[0], said[0]
    target.delete()

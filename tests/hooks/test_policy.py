"""The deploy policy is checked at start, with the file and line of every problem."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from registry_hooks.policy import PolicyError, parse
from tests.serving.conftest import BIN

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
GOOD = f"""version: 1
deployments:
  churn-prod:
    model: churn
    stage: production
    target: sagemaker:/eu-west-1
    on_leave: delete
    config:
      execution_role_arn: {ROLE}
      strategy: canary
  churn-champion:
    model: churn
    alias: champion
    endpoint: churn-live
    config:
      execution_role_arn: {ROLE}
"""


def test_a_good_policy_parses_with_defaults_and_canonical_stages():
    policy = parse(GOOD, "deploy-policy.yaml")
    prod, champion = policy.rules
    assert (prod.name, prod.model, prod.stage, prod.source, prod.region, prod.on_leave, prod.line) == (
        "churn-prod",
        "churn",
        "Production",
        "Production",
        "eu-west-1",
        "delete",
        3,
    )
    assert (champion.source, champion.endpoint, champion.target, champion.on_leave, champion.max_attempts) == (
        "@champion",
        "churn-live",
        "sagemaker",
        "keep",
        5,
    )
    assert [r.name for r in policy.for_model("churn")] == ["churn-prod", "churn-champion"]


@pytest.mark.parametrize(
    "edit, line, words",
    [
        (
            ("strategy: canary", "strategy: canery"),
            10,
            ["strategy='canery'", "all_at_once, canary, linear, rolling, shadow"],
        ),
        (("      strategy: canary", "      stratgy: canary"), 10, ["'stratgy'", "Did you mean 'strategy'?"]),
        (("stage: production", "stage: Archived"), 5, ["stage='Archived'", "Staging, Production"]),
        (("on_leave: delete", "on_leave: destroy"), 7, ["on_leave='destroy'", "keep, delete"]),
        (
            ("    alias: champion\n", "    alias: champion\n    stage: Staging\n"),
            14,
            ["exactly one of `stage` and `alias`"],
        ),
        (
            ("target: sagemaker:/eu-west-1", "target: lambda:/eu-west-1"),
            6,
            ["target='lambda:/eu-west-1'", "sagemaker, sagemaker-ops, ecs"],
        ),
        (("endpoint: churn-live", "endpoint: churn_live"), 14, ["'churn_live'", "naming rule"]),
        (("endpoint: churn-live", "endpoint: churn-prod"), 11, ["both drive endpoint 'churn-prod'"]),
        (
            ("    model: churn\n    alias", "    model: churn\n    modle: x\n    alias"),
            13,
            ["unknown key 'modle'", "Did you mean 'model'?"],
        ),
        (("  churn-champion:", "  churn-prod:"), 11, ["key 'churn-prod' appears twice (first at line 3)"]),
        (
            ("      strategy: canary", "      strategy: canary\n      synchronous: false"),
            11,
            ["synchronous=False", "decided by the controller"],
        ),
        (("version: 1", "version: 2"), 1, ["version=2 is not supported"]),
        (
            ("    endpoint: churn-live\n", "    multi_model_endpoint: fleet\n"),
            15,
            ["`config` does not go with multi_model_endpoint"],
        ),
    ],
)
def test_every_error_names_the_file_line_value_and_allowed_values(edit, line, words):
    old, new = edit
    assert old in GOOD
    with pytest.raises(PolicyError) as caught:
        parse(GOOD.replace(old, new, 1), "deploy-policy.yaml")
    message = str(caught.value)
    assert message.startswith(f"deploy-policy.yaml:{line}: "), message
    assert "Allowed:" in message and all(w in message for w in words), message


def test_broken_yaml_and_a_missing_file_fail_with_where():
    with pytest.raises(PolicyError, match=r"^p.yaml:4: not valid YAML"):
        parse("version: 1\ndeployments:\n  a: [\n", "p.yaml")
    with pytest.raises(PolicyError, match=r"p.yaml:\d+: the policy has no `deployments`"):
        parse("version: 1\n", "p.yaml")


def test_hooks_check_prints_the_rules_and_fails_a_bad_policy(tmp_path: Path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("instance", "x").replace("strategy: canary", "instance_count: 0"))
    command = [str(BIN / "mlflow-sagemaker-ops"), "hooks", "check", "--policy"]
    ok = subprocess.run([*command, str(good)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "churn-prod: churn Production -> sagemaker:/eu-west-1 endpoint churn-prod (on_leave: delete" in ok.stdout
    failed = subprocess.run([*command, str(bad)], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    assert f"{bad}:10: " in failed.stderr and "instance_count=0" in failed.stderr


def test_models_on_one_multi_model_endpoint_may_share_it_but_not_with_an_endpoint_rule():
    mme = "    model: churn\n    alias: {alias}\n    multi_model_endpoint: fleet\n"
    two = f"version: 1\ndeployments:\n  churn-a:\n{mme.format(alias='a')}  churn-b:\n{mme.format(alias='b')}"
    assert [r.multi_model_endpoint for r in parse(two).rules] == ["fleet", "fleet"]
    clash = two + f"  fleet:\n    model: churn\n    stage: Production\n    config:\n      execution_role_arn: {ROLE}\n"
    with pytest.raises(
        PolicyError, match=r"<policy>:11: deployments 'churn-a' and 'fleet' both drive endpoint 'fleet'"
    ):
        parse(clash)


ECS = f"""version: 1
deployments:
  churn-ecs:
    model: churn
    stage: Staging
    target: ecs:/eu-west-1
    config:
      cluster: models
      subnets: [subnet-0a1b2c3d]
      execution_role_arn: {ROLE}
      task_role_arn: {ROLE}
"""


def test_an_ecs_rule_is_checked_by_the_ecs_targets_own_validation():
    rule = parse(ECS).rules[0]
    assert (rule.kind, rule.deployment, rule.region) == ("ecs", "churn-ecs", "eu-west-1")
    with pytest.raises(PolicyError) as caught:
        parse(ECS + "      memory: 3000\n")
    assert "memory=3000" in str(caught.value) and "with cpu=1024" in str(caught.value)
    with pytest.raises(PolicyError) as caught:
        parse(ECS.replace("ecs:/eu-west-1", f"ecs:/eu-west-1/{ROLE}"))
    assert "takes a region only" in str(caught.value)


def test_a_rule_may_not_set_the_suites_own_tags():
    text = GOOD.replace(
        "      strategy: canary\n",
        "      strategy: canary\n      tags:\n        mlflow-sagemaker-ops:model-version: '9'\n",
    )
    with pytest.raises(PolicyError) as caught:
        parse(text, "deploy-policy.yaml")
    message = str(caught.value)
    assert message.startswith("deploy-policy.yaml:") and "suite's own" in message and "Rename the tag" in message

"""The ``-t ecs`` keys: types from CLI strings, required keys, and what ECS and Fargate refuse."""

from __future__ import annotations

import pytest

from mlflow_plugins.deploy.ecs import _spec as _ecs_spec
from mlflow_plugins.deploy.ecs import config as ecs_config
from mlflow_plugins.errors import InvalidValue, MissingSetting, UnknownKey

ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
BASE = {"subnets": "subnet-0a1b2c3d, subnet-4e5f6a7b", "execution_role_arn": ROLE, "task_role_arn": ROLE}
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/churn/0123456789abcdef"


def test_cli_strings_become_their_types_with_safe_defaults():
    parsed = ecs_config.parse(
        {**BASE, "cpu": "2048", "memory": "4096", "desired_count": "2", "assign_public_ip": "true"}
    )
    assert parsed.subnets == ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
    assert (parsed.cpu, parsed.memory, parsed.desired_count, parsed.assign_public_ip) == (2048, 4096, 2, True)
    assert (parsed.circuit_breaker, parsed.rollback, parsed.cluster) == (True, True, "default")


@pytest.mark.parametrize(
    "extra, error, words",
    [
        ({"memory": "3000"}, InvalidValue, ["memory=3000", "with cpu=1024: 2048, 3072", "-C memory=2048"]),
        ({"cpu": "300"}, InvalidValue, ["cpu='300'", "256, 512, 1024"]),
        ({"rollback": "true", "circuit_breaker": "false"}, InvalidValue, ["rollback=True", "circuit_breaker=true"]),
        (
            {"minimum_healthy_percent": "100", "maximum_percent": "100"},
            InvalidValue,
            ["maximum_percent=100", "neither start"],
        ),
        ({"health_check_grace_seconds": "60"}, InvalidValue, ["health_check_grace_seconds=60", "target_group_arn"]),
        ({"subnets": "subnet-xyz"}, InvalidValue, ["'subnet-xyz' breaks the naming rule", "subnet-0a1b2c3d"]),
        (
            {"target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/1"},
            InvalidValue,
            ["target_group_arn", "naming rule"],
        ),
        ({"env": '{"SAGEMAKER_BIND_TO_PORT": "9000"}'}, InvalidValue, ["SAGEMAKER_BIND_TO_PORT", "container_port"]),
        (
            {
                "autoscaling": '{"min_capacity": 1, "max_capacity": 3, "target": 100, "metric": "ALBRequestCountPerTarget"}'
            },
            InvalidValue,
            ["ALBRequestCountPerTarget", "target_group_arn"],
        ),
        (
            {"autoscaling": '{"min_capacity": 1, "max_capacity": 3, "target": 150}'},
            InvalidValue,
            ["percentage", "1 to 100"],
        ),
        (
            {"autoscaling": '{"min_capacity": 2, "max_capacity": 3, "target": 50}'},
            InvalidValue,
            ["desired_count=1", "2 to 3"],
        ),
        (
            {"autoscaling": '{"min_capacity": 1, "max_capacity": 3, "target": 50, "metric": "CPU"}'},
            InvalidValue,
            ["ECSServiceAverageCPUUtilization"],
        ),
        ({"desired_cont": "2"}, UnknownKey, ["'desired_cont'", "Did you mean 'desired_count'", "help -t ecs"]),
    ],
)
def test_what_ecs_refuses_fails_with_the_value_the_choices_and_the_fix(extra, error, words):
    with pytest.raises(error) as raised:
        ecs_config.parse({**BASE, **extra})
    for word in words:
        assert word in str(raised.value)


@pytest.mark.parametrize("missing", ["subnets", "execution_role_arn", "task_role_arn"])
def test_required_keys_are_named_with_an_example(missing):
    with pytest.raises(MissingSetting, match=f"{missing} is not set.*Pass -C {missing}="):
        ecs_config.parse({k: v for k, v in BASE.items() if k != missing})


def test_a_live_service_reads_back_as_the_config_it_was_deployed_with():
    cfg = ecs_config.parse(
        {
            **BASE,
            "cluster": "models",
            "cpu": "512",
            "memory": "2048",
            "desired_count": "2",
            "target_group_arn": TG,
            "health_check_grace_seconds": "30",
            "env": '{"A": "1"}',
            "security_groups": "sg-0a1b2c3d",
            "log_group": "/ml/churn",
            "minimum_healthy_percent": "50",
        }
    )
    uri = "s3://models-bucket/mlflow-sagemaker-ops/ecs/models/churn/abc/model.tar.gz"
    definition = _ecs_spec.task_definition("churn", cfg, "img:1", uri, "us-east-1", [])
    service = {
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/models",
        "desiredCount": 2,
        **_ecs_spec.service_settings(cfg),
    }
    live = _ecs_spec.live_config(service, definition, {"team": "ml"})
    again = ecs_config.parse(live)
    assert _ecs_spec.same_task(_ecs_spec.task_definition("churn", again, "img:1", uri, "us-east-1", []), definition)
    assert _ecs_spec.service_settings(again) == _ecs_spec.service_settings(cfg)
    assert (again.bucket, again.tags, _ecs_spec.model_uri_of(definition)) == ("models-bucket", {"team": "ml"}, uri)

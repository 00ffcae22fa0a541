"""Deployment-target configuration: MLflow's keys, CLI strings, unknown keys, forbidden combinations."""

from __future__ import annotations

import copy
import inspect

import mlflow.sagemaker
import pytest

from mlflow_plugins.deploy.sagemaker import config
from mlflow_plugins.errors import InvalidValue, UnknownKey

SERVERLESS = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 10,
    "DestinationS3Uri": "s3://b/capture",
    "CaptureOptions": [{"CaptureMode": "Input"}],
}


def test_every_key_of_mlflows_builtin_client_is_accepted():
    source = inspect.getsource(mlflow.sagemaker.SageMakerDeploymentClient._default_deployment_config)
    builtin = set(__import__("re").findall(r'"([a-z_]+)":', source)) | {"mode"}
    assert builtin <= set(config.BY_NAME)
    assert {k.name for k in config.KEYS if k.builtin} == builtin


@pytest.mark.parametrize(
    "raw, expected", [("true", True), ("True", True), ("1", True), ("false", False), ("0", False), (True, True)]
)
def test_cli_booleans(raw, expected):
    assert config.parse({"synchronous": raw}).synchronous is expected


def test_cli_strings_become_their_types_and_the_callers_dict_is_untouched():
    given = {"instance_count": "3", "env": '{"A": "1"}', "alarms": "a, b", "tags": {"team": "ml"}}
    before = copy.deepcopy(given)
    parsed = config.parse(given)
    assert (parsed.instance_count, parsed.env, parsed.alarms) == (3, {"A": "1"}, ["a", "b"])
    parsed.tags["team"] = "changed"
    assert given == before
    assert parsed.instance_type == "ml.m5.large" and parsed.strategy == "all_at_once"


def test_an_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(UnknownKey) as caught:
        config.parse({"instnce_type": "ml.m5.large"})
    message = str(caught.value)
    assert "'instnce_type'" in message and "Did you mean 'instance_type'?" in message and "mode" in message


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("instance_count", "two", "not a whole number"),
        ("instance_count", "0", "from 1 to 100"),
        ("synchronous", "maybe", "Allowed: true, false, 1, 0"),
        ("strategy", "big_bang", "all_at_once, canary, linear, rolling, shadow"),
        ("canary_size", "75", "from 1 to 50"),
        ("variant_name", "main_variant", "naming rule"),
        ("execution_role_arn", "SageMakerRole", "naming rule"),
        ("instance_type", "m5.large", "not one of AWS's values"),
        ("env", "{not json", "not JSON"),
        ("mode", "upsert", "create, replace, add"),
    ],
)
def test_bad_values_name_the_key_the_value_and_the_fix(key, value, words):
    with pytest.raises(InvalidValue) as caught:
        config.parse({key: value})
    message = str(caught.value)
    assert message.startswith(f"{key}={value!r} is not valid") and words in message and f"-C {key}=" in message


@pytest.mark.parametrize(
    "given, key",
    [
        (
            {
                "serverless_config": SERVERLESS,
                "vpc_config": {"Subnets": ["subnet-0a1b2c3d"], "SecurityGroupIds": ["sg-0a1b2c3d"]},
            },
            "vpc_config",
        ),
        ({"serverless_config": SERVERLESS, "data_capture_config": CAPTURE}, "data_capture_config"),
        ({"serverless_config": SERVERLESS, "mode": "add"}, "mode"),
        ({"serverless_config": SERVERLESS, "strategy": "rolling"}, "strategy"),
        (
            {"serverless_config": SERVERLESS, "async_inference_config": {"OutputConfig": {"S3OutputPath": "s3://b/a"}}},
            "async_inference_config",
        ),
        ({"mode": "add", "strategy": "canary"}, "strategy"),
    ],
)
def test_combinations_aws_forbids_fail_before_any_call(given, key):
    with pytest.raises(InvalidValue) as caught:
        config.parse(given)
    assert str(caught.value).startswith(f"{key}=")


def test_help_documents_every_key_with_type_default_and_example():
    text = config.sagemaker_help()
    for key in config.KEYS:
        assert f"  {key.name} (" in text and f"-C {key.name}=" in text


def test_the_readme_tables_are_generated_from_the_key_tables():
    """`python -m mlflow_plugins.deploy.docs` rewrites them; a key added without it fails here."""
    from pathlib import Path

    from mlflow_plugins.deploy import docs

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert docs.rewrite(readme) == readme
    assert all(f"| `{key.name}`" in readme for key in config.KEYS)


@pytest.mark.parametrize(
    "key, value, words",
    [
        # nested AWS values are checked against botocore's request shapes before any AWS call
        ("vpc_config", "[1]", ["vpc_config=", "not an object", "SecurityGroupIds, Subnets"]),
        (
            "vpc_config",
            '{"Subnets": ["subnet-0a1b2c3d"]}',
            ["vpc_config: SecurityGroupIds", "required member is missing"],
        ),
        (
            "serverless_config",
            '{"MemorySizeInMB": 1000, "MaxConcurrency": 5}',
            ["serverless_config: MemorySizeInMB", "1024 to 6144"],
        ),
        ("env", '{"WORKERS": 2}', ["env: WORKERS", "not text"]),
        (
            "data_capture_config",
            '{"InitialSamplingPercentage": 10, "DestinationS3Uri": "s3://b", "CaptureOptions": []}',
            ["data_capture_config: CaptureOptions", "1 to 32 items"],
        ),
        ("instance_type", "ml.m5.huge", ["not one of AWS's values", "ml.t2.medium"]),
        ("tags", {f"t{i}": "v" for i in range(51)}, ["51 tags", "at most 40"]),
        ("tags", '{"team": "' + "x" * 300 + '"}', ["at most 256 characters"]),
        ("tags", '{"mlflow-sagemaker-ops:model-version": "9"}', ["suite's own", "Rename the tag"]),
        ("variant_name", "primary\n", ["naming rule"]),
        ("execution_role_arn", "arn:aws:iam::123456789012:role/x\n", ["naming rule"]),
    ],
)
def test_values_aws_would_refuse_fail_here_with_the_key_and_the_fix(key, value, words):
    with pytest.raises(InvalidValue) as caught:
        config.parse({key: value})
    message = str(caught.value)
    assert all(word in message for word in words), message

"""Deployment-target configuration: MLflow's keys, CLI strings, unknown keys, forbidden combinations."""

from __future__ import annotations

import copy
import inspect

import mlflow.sagemaker
import pytest

from mlflow_plugins.deploy import config
from mlflow_plugins.errors import InvalidValue, UnknownKey


def test_every_key_of_mlflows_builtin_client_is_accepted():
    source = inspect.getsource(mlflow.sagemaker.SageMakerDeploymentClient._default_deployment_config)
    builtin = set(__import__("re").findall(r'"([a-z_]+)":', source)) | {"mode"}
    assert builtin <= set(config.BY_NAME)
    assert {k.name for k in config.KEYS if k.builtin} == builtin


@pytest.mark.parametrize("raw, expected", [("true", True), ("True", True), ("1", True), ("false", False), ("0", False), (True, True)])
def test_cli_booleans(raw, expected):
    assert config.parse({"synchronous": raw})["synchronous"] is expected


def test_cli_strings_become_their_types_and_the_callers_dict_is_untouched():
    given = {"instance_count": "3", "env": '{"A": "1"}', "alarms": "a, b", "tags": {"team": "ml"}}
    before = copy.deepcopy(given)
    parsed = config.parse(given)
    assert (parsed["instance_count"], parsed["env"], parsed["alarms"]) == (3, {"A": "1"}, ["a", "b"])
    parsed["tags"]["team"] = "changed"
    assert given == before
    assert parsed["instance_type"] == "ml.m5.large" and parsed["strategy"] == "all_at_once"


def test_an_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(UnknownKey) as caught:
        config.parse({"instnce_type": "ml.m5.large"})
    message = str(caught.value)
    assert "'instnce_type'" in message and "Did you mean 'instance_type'?" in message and "mode" in message


@pytest.mark.parametrize("key, value, words", [
    ("instance_count", "two", "not a whole number"),
    ("instance_count", "0", "from 1 to 100"),
    ("synchronous", "maybe", "Allowed: true, false, 1, 0"),
    ("strategy", "big_bang", "all_at_once, canary, linear, rolling, shadow"),
    ("canary_size", "75", "from 1 to 50"),
    ("variant_name", "main_variant", "naming rule"),
    ("execution_role_arn", "SageMakerRole", "naming rule"),
    ("instance_type", "m5.large", "naming rule"),
    ("env", "{not json", "not JSON"),
    ("mode", "upsert", "create, replace, add"),
])
def test_bad_values_name_the_key_the_value_and_the_fix(key, value, words):
    with pytest.raises(InvalidValue) as caught:
        config.parse({key: value})
    message = str(caught.value)
    assert message.startswith(f"{key}={value!r} is not valid") and words in message and f"-C {key}=" in message


@pytest.mark.parametrize("given, key", [
    ({"serverless_config": {"MemorySizeInMB": 2048}, "vpc_config": {"Subnets": ["s"]}}, "vpc_config"),
    ({"serverless_config": {"MemorySizeInMB": 2048}, "data_capture_config": {"EnableCapture": True}}, "data_capture_config"),
    ({"serverless_config": {"MemorySizeInMB": 2048}, "mode": "add"}, "mode"),
    ({"serverless_config": {"MemorySizeInMB": 2048}, "strategy": "rolling"}, "strategy"),
    ({"serverless_config": {"MemorySizeInMB": 2048}, "async_inference_config": {"OutputConfig": {}}}, "async_inference_config"),
    ({"mode": "add", "strategy": "canary"}, "strategy"),
])
def test_combinations_aws_forbids_fail_before_any_call(given, key):
    with pytest.raises(InvalidValue) as caught:
        config.parse(given)
    assert str(caught.value).startswith(f"{key}=")


def test_help_documents_every_key_with_type_default_and_example():
    text = config.help_text()
    for key in config.KEYS:
        assert f"  {key.name} (" in text and f"-C {key.name}=" in text


def test_the_readme_documents_every_key():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("<!-- config-keys -->")[1].split("<!-- /config-keys -->")[0]
    for key in config.KEYS:
        assert f"| `{key.name}`" in table and key.example in table

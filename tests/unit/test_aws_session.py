"""The one boto3 client factory: standard configuration, retries, role assumption."""

from __future__ import annotations

import pytest

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.aws.session import DEFAULT_MAX_ATTEMPTS
from mlflow_plugins.errors import MissingSetting


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    return tmp_path


def test_retries_default_to_standard_mode_with_more_attempts(clean_env):
    clients = make_clients(AwsSettings(region="eu-west-1"))
    retries = clients("sagemaker").meta.config.retries
    assert retries == {"mode": "standard", "total_max_attempts": DEFAULT_MAX_ATTEMPTS}


def test_user_retry_settings_win(clean_env, monkeypatch):
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    retries = make_clients(AwsSettings(region="eu-west-1"))("s3").meta.config.retries
    assert retries == {"mode": "adaptive", "total_max_attempts": 3}


def test_region_and_endpoint_come_from_standard_configuration(clean_env, monkeypatch):
    (clean_env / "config").write_text("[profile staging]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clients = make_clients(AwsSettings(profile="staging"))
    client = clients("sagemaker")
    assert (clients.region, client.meta.region_name) == ("ap-south-1", "ap-south-1")
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert make_clients()("ecs").meta.region_name == "eu-central-1"


def test_a_missing_region_says_how_to_set_one(clean_env):
    clients = make_clients()
    with pytest.raises(MissingSetting) as caught:
        clients("sagemaker")
    message = str(caught.value)
    assert "AWS region is not set" in message and "AWS_REGION" in message and "eu-west-1" in message


def test_clients_are_made_once_per_service(clean_env):
    clients = make_clients(AwsSettings(region="eu-west-1"))
    assert clients("sagemaker") is clients("sagemaker")
    assert clients("sagemaker") is not clients("s3")


def test_role_assumption_uses_sts_and_the_assumed_credentials(aws, sandbox):
    iam = aws("iam")
    role = iam.create_role(RoleName="deployer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    clients = make_clients(AwsSettings(region="us-east-1", assume_role_arn=role))
    identity = clients("sts").get_caller_identity()
    assert identity["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/deployer/")
    assert clients("sagemaker").list_endpoints()["Endpoints"] == []

"""The one place that decides what is a credential: URIs, free text, names and values, log records."""

from __future__ import annotations

import logging

import pytest

from mlflow_plugins import secrets

PASSWORD = "S3cret-pw"


@pytest.mark.parametrize(
    "uri, stripped",
    [
        (f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:5432/test", "postgresql+psycopg2://127.0.0.1:5432/test"),
        (f"http://alice:{PASSWORD}@127.0.0.1:5000/", "http://127.0.0.1:5000/"),
        ("https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r.git", "https://github.com/o/r.git"),
        (f"mysql://u:p@ss{PASSWORD}@db:3306/x", "mysql://db:3306/x"),  # an unescaped '@' in the password
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=abc&versionId=3",
            "https://b.s3.amazonaws.com/k?versionId=3",
        ),
        (f"postgresql://h/db?password={PASSWORD}&sslmode=require", "postgresql://h/db?sslmode=require"),
        (
            "https://acct.blob.core.windows.net/c/f?sv=2022&sig=abc%2Bdef",
            "https://acct.blob.core.windows.net/c/f?sv=2022",
        ),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:///registry-hooks.db", "sqlite:///registry-hooks.db"),
        ("models:/churn/3", "models:/churn/3"),
        ("mlflow-artifacts:/1/abc/artifacts/model", "mlflow-artifacts:/1/abc/artifacts/model"),
        ("s3://bucket/key?versionId=3", "s3://bucket/key?versionId=3"),
    ],
)
def test_strip_uri_drops_user_info_and_credential_query_parameters(uri, stripped):
    assert secrets.strip_uri(uri) == stripped
    assert secrets.strip_uri(stripped) == stripped  # idempotent


def test_a_password_rotation_strips_to_the_same_uri():
    old = secrets.strip_uri(f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:5432/test")
    assert old == secrets.strip_uri("postgresql+psycopg2://postgres:rotated-2@127.0.0.1:5432/test")
    assert secrets.strip_uri("postgresql+psycopg2://bob:x@127.0.0.1:5432/test") == old  # who reads is no part of it


def test_redact_strips_every_uri_in_a_message_and_masks_tokens():
    message = (
        f"API request to http://alice:{PASSWORD}@127.0.0.1:5000/api/2.0/mlflow/runs/get failed with "
        f"exception ConnectionError('Max retries'); key AKIAIOSFODNN7EXAMPLE; header Bearer abc123def456ghi789; "
        f"password={PASSWORD}"
    )
    clean = secrets.redact(message)
    assert PASSWORD not in clean and "AKIAIOSFODNN7EXAMPLE" not in clean and "abc123def456ghi789" not in clean
    assert "http://127.0.0.1:5000/api/2.0/mlflow/runs/get" in clean
    assert (
        secrets.redact("Basic authentication is on; serving http://127.0.0.1:8470")
        == "Basic authentication is on; serving http://127.0.0.1:8470"
    )  # nothing secret, nothing changed


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "db_password",
        "dbPassword",
        "AWS_SECRET_ACCESS_KEY",
        "api_key",
        "apiKey",
        "hf_token",
        "access-key",
        "private.key",
        "client_secret",
        "Authorization",
        "sas_token",
    ],
)
def test_secret_names(name):
    assert secrets.secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "tokenizer",
        "max_tokens",
        "learning_rate",
        "keyword",
        "author",
        "path",
        "passes",
        "n_estimators",
        "primary_key_column",
        "monkey",
    ],
)
def test_names_that_are_not_secret(name):
    assert not secrets.secret_name(name)


@pytest.mark.parametrize(
    "value",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlMTIz",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "sk-abcdefghijklmnopqrstuvwx",
        "Bearer 0a1b2c3d4e5f6a7b8c9d",
        "token=abcd1234",
    ],
)
def test_secret_values(value):
    assert secrets.secret_value(value) and secrets.looks_secret("notes", value)


def test_public_leaves_secrets_out_keeps_the_rest_and_counts():
    kept, withheld = secrets.public(
        {
            "param.lr": "0.1",
            "param.db_password": PASSWORD,
            "param.notes": "AKIAIOSFODNN7EXAMPLE",
            "source_name": f"https://bot:{PASSWORD}@github.com/o/r.git",
            "param.max_tokens": "512",
        }
    )
    assert kept == {"param.lr": "0.1", "source_name": "https://github.com/o/r.git", "param.max_tokens": "512"}
    assert withheld == 2


def test_log_records_are_redacted_with_their_tracebacks(caplog):
    previous = logging.getLogRecordFactory()
    secrets.install_log_redaction()
    secrets.install_log_redaction()  # idempotent: one wrapper
    try:
        assert isinstance(logging.getLogRecordFactory(), secrets.RedactingRecords)
        assert not isinstance(logging.getLogRecordFactory().factory, secrets.RedactingRecords)
        log = logging.getLogger("test-secrets")
        with caplog.at_level(logging.INFO, logger="test-secrets"):
            log.info("registry %s", f"http://alice:{PASSWORD}@127.0.0.1:5000")
            try:
                raise ConnectionError(f"could not reach postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test")
            except ConnectionError:
                log.exception("pass failed")
        assert "http://127.0.0.1:5000" in caplog.text and "ConnectionError" in caplog.text
        assert PASSWORD not in caplog.text
    finally:
        logging.setLogRecordFactory(previous)

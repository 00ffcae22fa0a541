"""The error family: messages built from fields, MLflow codes, pickling."""

from __future__ import annotations

import pickle

import pytest
from botocore.exceptions import ClientError
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2

from mlflow_plugins import errors


def test_messages_state_the_value_the_allowed_values_and_the_fix():
    error = errors.InvalidValue(
        name="instance_count",
        value=0,
        reason="an endpoint needs an instance",
        allowed="a whole number from 1 to 100",
        fix="Pass -C instance_count=1.",
    )
    assert str(error) == (
        "instance_count=0 is not valid: an endpoint needs an instance. "
        "Allowed: a whole number from 1 to 100. Pass -C instance_count=1."
    )
    unknown = errors.UnknownKey(
        where="sagemaker target config",
        key="instnce_type",
        allowed="instance_type, instance_count",
        fix="Check the spelling.",
    )
    assert "Unknown sagemaker target config key 'instnce_type'" in str(unknown)


def test_a_missing_field_fails_at_the_raise_site():
    with pytest.raises(KeyError):
        errors.InvalidValue(name="x", value=1)


@pytest.mark.parametrize(
    "error, code",
    [
        (
            errors.InvalidValue(name="a", value=1, reason="r", allowed="b", fix="f"),
            databricks_pb2.INVALID_PARAMETER_VALUE,
        ),
        (errors.ResourceNotFound(kind="endpoint", name="ep", fix="f"), databricks_pb2.RESOURCE_DOES_NOT_EXIST),
        (errors.ResourceConflict(kind="endpoint", name="ep", fix="f"), databricks_pb2.RESOURCE_ALREADY_EXISTS),
        (errors.AwsThrottled(operation="o", code="c", detail="d", fix="f"), databricks_pb2.REQUEST_LIMIT_EXCEEDED),
        (errors.AwsCallFailed(operation="o", code="c", detail="d", fix="f"), databricks_pb2.INTERNAL_ERROR),
    ],
)
def test_errors_become_mlflow_exceptions_with_fitting_codes(error, code):
    converted = errors.to_mlflow_exception(error)
    assert isinstance(converted, MlflowException)
    assert converted.error_code == databricks_pb2.ErrorCode.Name(code)
    assert converted.message == str(error)


def test_client_errors_map_by_code_never_by_message():
    def client_error(code: str, message: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": message}}, "CreateEndpoint")

    assert isinstance(errors.from_client_error(client_error("ThrottlingException", "x"), "f"), errors.AwsThrottled)
    looks_throttled = errors.from_client_error(client_error("ValidationException", "Rate exceeded"), "f")
    assert type(looks_throttled) is errors.AwsCallFailed


def test_errors_survive_pickling():
    error = errors.ResourceNotFound(kind="endpoint", name="ep", fix="Create it first.")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.fields) == (type(error), str(error), error.fields)

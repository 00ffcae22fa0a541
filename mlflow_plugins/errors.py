"""The suite's error family.

Every error builds its message from named fields with a one-line template, the way botocore's
exceptions do, so each message states the bad value, what is allowed, and what to do next.
At the MLflow boundary, :func:`to_mlflow_exception` turns any of them into an
``MlflowException`` with a fitting error code.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "OpsError",
    "InvalidValue",
    "UnknownKey",
    "MissingSetting",
    "ResourceNotFound",
    "ResourceConflict",
    "AwsCallFailed",
    "AwsThrottled",
    "to_mlflow_exception",
]


class OpsError(Exception):
    """Base of every error the suite raises on purpose.

    Subclasses set ``fmt`` (a ``str.format`` template over the keyword fields) and
    ``mlflow_code`` (the name of an MLflow ``ErrorCode``). Every field in ``fmt`` is required:
    a missing one is a programming error and fails loudly at the raise site.
    """

    fmt = "{message}"
    mlflow_code = "INTERNAL_ERROR"

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        super().__init__(self.fmt.format(**fields))

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only construction: rebuild from the fields (pickling, multiprocessing).
        return (_rebuild, (type(self), self.fields))


def _rebuild(cls: type[OpsError], fields: dict[str, Any]) -> OpsError:
    return cls(**fields)


class InvalidValue(OpsError):
    """A setting has a value outside what is allowed."""

    fmt = "{name}={value!r} is not valid: {reason}. Allowed: {allowed}. {fix}"
    mlflow_code = "INVALID_PARAMETER_VALUE"


class UnknownKey(OpsError):
    """A configuration key the suite does not know (never silently ignored)."""

    fmt = "Unknown {where} key {key!r}. Allowed keys: {allowed}. {fix}"
    mlflow_code = "INVALID_PARAMETER_VALUE"


class MissingSetting(OpsError):
    """A required setting is absent."""

    fmt = "{name} is not set. Allowed: {allowed}. {fix}"
    mlflow_code = "INVALID_PARAMETER_VALUE"


class ResourceNotFound(OpsError):
    fmt = "{kind} {name!r} does not exist. {fix}"
    mlflow_code = "RESOURCE_DOES_NOT_EXIST"


class ResourceConflict(OpsError):
    fmt = "{kind} {name!r} already exists. {fix}"
    mlflow_code = "RESOURCE_ALREADY_EXISTS"


class AwsCallFailed(OpsError):
    """An AWS call failed after botocore's retries; ``code`` is the AWS error code."""

    fmt = "AWS {operation} failed with {code}: {detail}. {fix}"
    mlflow_code = "INTERNAL_ERROR"


class AwsThrottled(AwsCallFailed):
    """AWS kept throttling after every retry that the retry config allows."""

    mlflow_code = "REQUEST_LIMIT_EXCEEDED"


_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)


def from_client_error(error: Any, fix: str) -> AwsCallFailed:
    """Turn a botocore ``ClientError`` into a domain error by its error code, never its text."""
    info = error.response.get("Error", {})
    code = info.get("Code", "Unknown")
    cls = AwsThrottled if code in _THROTTLING_CODES else AwsCallFailed
    return cls(
        operation=getattr(error, "operation_name", "call"),
        code=code,
        detail=info.get("Message", "no message"),
        fix=fix,
    )


def to_mlflow_exception(error: OpsError) -> Exception:
    """The error as an ``MlflowException``, for the MLflow plugin boundary."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    code = getattr(databricks_pb2, error.mlflow_code)
    return MlflowException(str(error), error_code=code)

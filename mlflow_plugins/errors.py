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
    "OwnedElsewhere",
    "InvalidValue",
    "UnknownKey",
    "MissingSetting",
    "ResourceNotFound",
    "ResourceConflict",
    "AwsCallFailed",
    "AwsThrottled",
    "JobFailed",
    "ServingError",
    "BadRequest",
    "ModelNotFound",
    "ModelAlreadyLoaded",
    "NotAcceptable",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "InsufficientMemory",
    "ModelFailure",
    "ModelLoadFailed",
    "ModelNotReady",
    "PredictionTimeout",
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


class OwnedElsewhere(OpsError):
    """A deployment that something else owns (a CloudFormation stack, or none where a stack was
    asked for): the suite would change it behind its owner's back."""

    fmt = "{kind} {name!r} belongs to {owner}. {fix}"
    mlflow_code = "INVALID_STATE"


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


class JobFailed(OpsError):
    """An AWS job (a batch transform) ended without finishing its work."""

    fmt = "{kind} {name!r} ended {status}: {reason}{logs} {fix}"
    mlflow_code = "INTERNAL_ERROR"


class ServingError(OpsError):
    """An error the serving runtime answers with; ``status`` is its HTTP status."""

    status = 500
    mlflow_code = "INTERNAL_ERROR"


class BadRequest(ServingError):
    fmt = "{detail}"
    status = 400
    mlflow_code = "BAD_REQUEST"

    @classmethod
    def from_mlflow(cls, error: Any, limit: int = 2000) -> BadRequest:
        """MLflow's input error as a 400 that keeps MLflow's error code (as its server does)."""
        converted = cls(detail=error.message[:limit])
        converted.mlflow_code = error.error_code
        return converted


class ModelNotFound(ServingError):
    fmt = "Model {name!r} is not loaded. Loaded models: {loaded}. Load it with POST /models first."
    status = 404
    mlflow_code = "RESOURCE_DOES_NOT_EXIST"


class ModelAlreadyLoaded(ServingError):
    fmt = "Model {name!r} is already loaded from {url}. Unload it with DELETE /models/{name} first."
    status = 409
    mlflow_code = "RESOURCE_ALREADY_EXISTS"


class NotAcceptable(ServingError):
    fmt = "Accept {value!r} is not supported. Allowed: {allowed}. Send one of them, or */*."
    status = 406
    mlflow_code = "BAD_REQUEST"


class PayloadTooLarge(ServingError):
    fmt = "The request body is {size} bytes; the limit is {limit} bytes (SageMaker's {limit_mb:g} MB). Send fewer rows per request, or use an async endpoint."
    status = 413
    mlflow_code = "BAD_REQUEST"


class UnsupportedMediaType(ServingError):
    fmt = "Content-Type {value!r} is not supported. Allowed: {allowed}. Set Content-Type to one of them."
    status = 415
    mlflow_code = "BAD_REQUEST"


class InsufficientMemory(ServingError):
    fmt = "Model {name!r} needs {needed_mb:.1f} MB; the memory budget is {budget_mb:.1f} MB. Raise --memory-budget-mb or use a larger instance."
    status = 507
    mlflow_code = "RESOURCE_EXHAUSTED"


class ModelLoadFailed(ServingError):
    fmt = "Model {name!r} failed to load from {url}: {reason}. Check that the URL holds an MLflow model (an MLmodel file) built for this runtime."
    status = 500


class ModelFailure(ServingError):
    fmt = "The model failed while predicting ({kind}). The server log has the details; check the model with the same input locally."
    status = 500


class ModelNotReady(ServingError):
    fmt = "The model is {state}. {fix}"
    status = 503
    mlflow_code = "TEMPORARILY_UNAVAILABLE"


class PredictionTimeout(ServingError):
    fmt = "The prediction took longer than {seconds:g} s (SAGEMAKER_MODEL_SERVER_TIMEOUT). Send fewer rows, or raise the timeout."
    status = 504
    mlflow_code = "DEADLINE_EXCEEDED"


def from_client_error(error: Any, fix: str) -> AwsCallFailed:
    """Turn a botocore ``ClientError`` into a domain error by its error code, never its text."""
    info = error.response.get("Error", {})
    code = info.get("Code", "Unknown")
    cls = AwsThrottled if code in _THROTTLING_CODES else AwsCallFailed
    return cls(
        operation=getattr(error, "operation_name", "call"),
        code=code,
        detail=info.get("Message", "no message").rstrip("."),
        fix=fix,
    )


def as_domain_error(error: Exception, fix: str) -> Exception:
    """A botocore ``ClientError`` as a domain error; anything else unchanged."""
    if isinstance(getattr(error, "response", None), dict) and "Error" in error.response:  # type: ignore[attr-defined]
        return from_client_error(error, fix=fix)
    return error


def to_mlflow_exception(error: OpsError) -> Exception:
    """The error as an ``MlflowException``, for the MLflow plugin boundary."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    code = getattr(databricks_pb2, error.mlflow_code)
    return MlflowException(str(error), error_code=code)

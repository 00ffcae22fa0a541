"""Shared pieces of the sandbox's SageMaker request handlers.

Handlers are plain functions ``handler(response) -> ActionResult`` installed as methods of
moto's ``SageMakerResponse`` under the operation's snake_case name; moto parses the request
from the service model and serializes the result to the operation's output shape.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import BaseResponse
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.utils import arn_formatter

from mlflow_plugins.sandbox import _constraints
from mlflow_plugins.sandbox._state import SandboxState, current

DEFAULT_PAGE = 10


def backend_of(response: BaseResponse) -> SageMakerModelBackend:
    return sagemaker_backends[response.current_account][response.region]


def request(response: BaseResponse, operation: str) -> dict[str, Any]:
    """The request's parameters, checked against the input shape's constraints as AWS does."""
    from moto.core.utils import get_service_model

    shape = get_service_model("sagemaker").operation_model(operation).input_shape
    params = {name: response._get_param(name) for name in shape.members}
    params = {k: v for k, v in params.items() if v is not None}
    errors = _constraints.violations(shape, params)
    if errors:
        raise ValidationError(_constraints.message(errors))
    return params


def state() -> SandboxState:
    return current()


def page(items: list[Any], params: dict[str, Any], default: int = DEFAULT_PAGE) -> tuple[list[Any], str | None]:
    """One page of ``items`` by the request's MaxResults and NextToken (an offset)."""
    try:
        offset = int(params.get("NextToken") or 0)
    except ValueError:
        raise ValidationError(f"Invalid pagination token {params.get('NextToken')!r}.") from None
    size = params.get("MaxResults") or default
    chunk = items[offset : offset + size]
    return chunk, (str(offset + size) if offset + size < len(items) else None)


def already_exists(kind: str, resource: str, name: str, backend: SageMakerModelBackend) -> ValidationError:
    """AWS's message for a duplicate name, e.g. for CreateEndpoint."""
    arn = arn_formatter(resource, name, backend.account_id, backend.region_name)
    return ValidationError(f'Cannot create already existing {kind} "{arn}".')


def not_found(kind: str, resource: str, name: str, backend: SageMakerModelBackend) -> ValidationError:
    arn = arn_formatter(resource, name, backend.account_id, backend.region_name)
    return ValidationError(f'Could not find {kind} "{arn}".')

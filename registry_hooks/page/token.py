"""The controller's identity towards the MLflow server: a shared token in one request header.

The ``deploy.*`` tags are the controller's (:mod:`.guard`). The controller writes them through
the MLflow REST API like any client, so the server tells it apart by a token that only the
server and the controller know: ``MLFLOW_REGISTRY_HOOKS_CONTROLLER_TOKEN``, set in both
environments. :class:`ControllerTokenHeader` is an MLflow request-header provider (entry point
``mlflow.request_header_provider``): in a process with the variable set, every MLflow REST
request carries it. The token is compared in constant time and never logged.

MLflow loads this module in every process that makes MLflow REST requests (when it imports its
request-header registry), so it imports nothing beyond MLflow's provider base class.
"""

from __future__ import annotations

import hmac
import os

from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider

TOKEN_ENV = "MLFLOW_REGISTRY_HOOKS_CONTROLLER_TOKEN"
HEADER = "X-Registry-Hooks-Controller-Token"


def configured() -> str | None:
    """This process's token, or None when the variable is unset or empty."""
    return os.environ.get(TOKEN_ENV) or None


def is_controller(sent: str | None) -> bool:
    """True when ``sent`` (the header's value) is this server's controller token."""
    token = configured()
    return bool(token and sent and hmac.compare_digest(sent.encode(), token.encode()))


class ControllerTokenHeader(RequestHeaderProvider):
    """Adds the token to MLflow's REST requests, in a process that has it."""

    def in_context(self) -> bool:
        return configured() is not None

    def request_headers(self) -> dict[str, str]:
        token = configured()
        return {HEADER: token} if token else {}


__all__ = ["HEADER", "TOKEN_ENV", "ControllerTokenHeader", "configured", "is_controller"]

"""The sandbox's HTTP server: moto's app, behind the control API and fault injection."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.base_backend import BackendDict
from moto.core.model_instances import reset_model_data
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

import mlflow_plugins
from mlflow_plugins.sandbox import _control, _state, _wire
from mlflow_plugins.sandbox._install import install
from mlflow_plugins.sandbox._state import SandboxState
from mlflow_plugins.sandbox.sagemaker._images import seed_suite_image

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"  # moto's default account
EXECUTION_ROLE_NAME = "SageMakerExecutionRole"
EXECUTION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/{EXECUTION_ROLE_NAME}"
_TRUST_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":'
    '["sagemaker.amazonaws.com","ecs-tasks.amazonaws.com"]},"Action":"sts:AssumeRole"}]}'
)


class SandboxApp:
    """WSGI: ``/_sandbox/*`` to the control API; an injected fault answers; else moto."""

    def __init__(self, state: SandboxState, control: _control.ControlApp) -> None:
        self.state = state
        self.control = control
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(_control.PREFIX):
            return self.control(environ, start_response)
        call = _wire.identify(environ)
        self.state.record_call(call.service, call.operation)
        fault = self.state.faults.take(call.service, call.operation)
        if fault is not None:
            status, code, message = fault.response(call.protocol)
            status, headers, body = _wire.error_response(call, status, code, message)
            log.info("sandbox: injected %s %s into %s.%s", status, code, call.service, call.operation)
            start_response(f"{status} Injected", list(headers.items()) + [("Content-Length", str(len(body)))])
            return [body]
        return self.moto(environ, start_response)


class SandboxServer:
    """Runs the sandbox in this process on a background thread."""

    def __init__(self, state: SandboxState, host: str, port: int, verbose: bool = False) -> None:
        self.state = state
        self.verbose = verbose
        self.host, self.port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        install()
        if not self.verbose:  # werkzeug logs every request at INFO
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.state.start()
        _state.activate(self.state)
        app = SandboxApp(self.state, _control.ControlApp(self.state, self.reset))
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self.state.url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()
        self.reset()

    def reset(self) -> None:
        """Wipe every resource (moto's reset wipes IAM too), then seed the execution role and the
        suite's serving image."""
        self.state.clear()
        with self.state.lock:
            BackendDict.reset()
            reset_model_data()
        self._seed()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.state.stop()
        _state.activate(None)

    def _seed(self) -> None:
        iam_backends[ACCOUNT_ID]["global"].create_role(
            role_name=EXECUTION_ROLE_NAME,
            assume_role_policy_document=_TRUST_POLICY,
            path="/",
            permissions_boundary=None,
            description="Execution role seeded by the mlflow-sagemaker-ops sandbox",
            tags=[],
            max_session_duration="3600",
        )
        seed_suite_image(ACCOUNT_ID, mlflow_plugins.__version__)

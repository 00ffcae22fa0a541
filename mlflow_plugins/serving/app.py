"""The SageMaker single-model contract: ``GET /ping`` and ``POST /invocations``.

``/ping`` answers 503 while the model loads, 200 once it is loaded, and 500 with the reason if it
failed to load (SageMaker then marks the endpoint Failed with that reason). It is answered on the
event loop, never behind a prediction (SageMaker allows a ping 2 s). ``GET /health`` is the same
as ``/ping`` and ``GET /version`` answers MLflow's version, as ``mlflow models serve`` does.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable

from mlflow_plugins.errors import ModelNotReady, PredictionTimeout, ServingError
from mlflow_plugins.serving.http import NOW, WORK, Request, Response
from mlflow_plugins.serving.model import Invocation, ServedModel, decode, invoke, predict_one, predict_together

log = logging.getLogger(__name__)


def error_response(error: Exception) -> Response:
    """The one place that turns an error into an HTTP response."""
    if isinstance(error, ServingError):
        status, code, message = error.status, error.mlflow_code, str(error)
    else:
        log.error("unexpected error", exc_info=error)
        status, code, message = 500, "INTERNAL_ERROR", "Internal server error. The server log has the details."
    return Response(status, json.dumps({"error_code": code, "message": message}).encode())


def not_found(request: Request, routes: str, allowed: tuple[str, ...] = ()) -> Response:
    """404 for an unknown path; 405 with ``Allow`` for a known path and another method (RFC 9110)."""
    if allowed:
        message = f"{request.path} does not take {request.method}. Allowed: {', '.join(allowed)}. Routes: {routes}."
        body = {"error_code": "BAD_REQUEST", "message": message}
        return Response(405, json.dumps(body).encode(), headers={"Allow": ", ".join(allowed)})
    message = f"No route {request.method} {request.path}. Routes: {routes}."
    body = {"error_code": "ENDPOINT_NOT_FOUND", "message": message}
    return Response(404, json.dumps(body).encode())


class SerialApp:
    """An app whose queued requests are handled one at a time, in order."""

    def __call__(self, request: Request) -> Response:
        raise NotImplementedError

    def lane(self, request: Request) -> str:
        return WORK

    def handle(self, request: Request) -> Response:
        return self(request)

    def handle_batch(self, requests: list[Request]) -> list[Response]:
        return [self(request) for request in requests]


class SingleModelApp(SerialApp):
    """Loads the model in the background so ``/ping`` can answer while it loads; predicts
    queued invocations together where that cannot change a result (see :mod:`.model`)."""

    ROUTES = "GET /ping, POST /invocations, GET /health, GET /version"
    METHODS = {"/ping": ("GET",), "/invocations": ("POST",), "/health": ("GET",), "/version": ("GET",)}

    def __init__(self, load: Callable[[], ServedModel], timeout: float | None) -> None:
        self.timeout = timeout
        self.model: ServedModel | None = None
        self.load_error: str | None = None
        self.ready = threading.Event()  # set when loading ends, loaded or failed
        self._loader = threading.Thread(target=self._load, args=(load,), name="model-loader", daemon=True)
        self._loader.start()

    @property
    def healthy(self) -> bool:
        return self.model is not None

    def _load(self, load: Callable[[], ServedModel]) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGALRM})  # main's signals
        try:
            self.model = load()
        except Exception as error:
            log.exception("the model failed to load")
            self.load_error = f"{type(error).__name__}: {error}"
        finally:
            self.ready.set()

    def lane(self, request: Request) -> str:
        if request.path == "/invocations" and request.method == "POST" and self.model is not None:
            return WORK
        return NOW  # health, version, 404s, and 503s while the model loads

    def __call__(self, request: Request) -> Response:
        try:
            if request.path in ("/ping", "/health") and request.method == "GET":
                self._ready()
                return Response(200, b'{"status": "healthy"}')
            if request.path == "/version" and request.method == "GET":
                return Response(200, _mlflow_version().encode(), content_type="text/plain")
            if request.path == "/invocations" and request.method == "POST":
                return invoke(self._ready(), request, self.timeout)
            return not_found(request, self.ROUTES, self.METHODS.get(request.path, ()))
        except Exception as error:
            return error_response(error)

    def handle_batch(self, requests: list[Request]) -> list[Response]:
        if len(requests) == 1 or self.model is None or not self.model.row_wise:
            return super().handle_batch(requests)
        responses: list[Response | None] = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, Invocation]]] = {}
        for index, request in enumerate(requests):
            if request.path != "/invocations" or request.method != "POST":
                responses[index] = self(request)
                continue
            try:
                invocation = decode(self.model, request)
            except Exception as error:
                responses[index] = error_response(error)
                continue
            groups.setdefault(invocation.batch_key(self.model) or ("single", index), []).append((index, invocation))
        for members in groups.values():
            together = None
            if len(members) > 1:
                try:
                    together = predict_together(self.model, [inv for _, inv in members], self.timeout)
                except PredictionTimeout as error:
                    together = [error_response(error)] * len(members)
            for position, (index, invocation) in enumerate(members):
                responses[index] = together[position] if together else self._one(invocation)
        return responses  # type: ignore[return-value]

    def _one(self, invocation: Invocation) -> Response:
        try:
            return predict_one(self.model, invocation, self.timeout)
        except Exception as error:
            return error_response(error)

    def _ready(self) -> ServedModel:
        if self.model is not None:
            return self.model
        if self.load_error is not None:
            raise _LoadFailed(
                state=f"not loaded: it failed to load ({self.load_error})",
                fix="Fix the model artifact and restart the server.",
            )
        raise ModelNotReady(state="still loading", fix="Retry after /ping answers 200.")


def _mlflow_version() -> str:
    from mlflow.version import VERSION

    return VERSION


class _LoadFailed(ModelNotReady):
    status = 500
    mlflow_code = "INTERNAL_ERROR"

"""One loaded MLflow pyfunc model, and one invocation against it.

The signature is enforced by pyfunc's ``predict`` itself, exactly as MLflow does it. An error that
MLflow raises for the input (a missing column, a wrong type) is a 400 naming the column; anything
else the model raises is a 500 whose message names only the exception's type, while the traceback
goes to the server log.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from mlflow_plugins.errors import BadRequest, ModelFailure, PredictionTimeout
from mlflow_plugins.serving import codec
from mlflow_plugins.serving.http import Request, Response

log = logging.getLogger(__name__)
_INPUT_ERRORS = {"BAD_REQUEST", "INVALID_PARAMETER_VALUE", "INVALID_STATE"}


def directory_bytes(path: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


class ServedModel:
    def __init__(self, path: str | Path) -> None:
        import mlflow.pyfunc

        self.path = str(path)
        self.pyfunc = mlflow.pyfunc.load_model(self.path)
        self.metadata = self.pyfunc.metadata
        self.schema = self.metadata.get_input_schema()
        self.takes_params = "params" in inspect.signature(self.pyfunc.predict).parameters
        self.size_bytes = directory_bytes(self.path)

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        try:
            if self.takes_params:
                return self.pyfunc.predict(data, params=params)
            return self.pyfunc.predict(data)
        except MlflowException as error:
            if error.error_code in _INPUT_ERRORS:
                raise BadRequest.from_mlflow(error, codec.MAX_DETAIL) from None
            log.exception("model %s failed", self.path)
            raise ModelFailure(kind=type(error).__name__) from None
        except PredictionTimeout:
            raise
        except Exception as error:
            log.exception("model %s failed", self.path)
            raise ModelFailure(kind=type(error).__name__) from None


def invoke(model: ServedModel, request: Request, timeout: float | None) -> Response:
    """Decode the payload, predict within ``timeout`` seconds, encode the predictions."""
    output = codec.choose_output(request.headers.get("accept"))
    parsed = codec.decode(request.body, request.headers.get("content-type", ""), model.metadata, model.schema)
    with deadline(timeout):
        predictions = model.predict(parsed.data, parsed.params)
    return Response(200, codec.encode(predictions, output, parsed.unwrapped), content_type=output)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise PredictionTimeout in this (main) thread after ``seconds`` (SIGALRM, no extra thread).

    Python code in the model is interrupted at once; a long call into native code is interrupted
    when it returns to Python.
    """
    if not seconds or threading.current_thread() is not threading.main_thread() or os.name != "posix":
        yield
        return

    def expire(*_: Any) -> None:
        raise PredictionTimeout(seconds=seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

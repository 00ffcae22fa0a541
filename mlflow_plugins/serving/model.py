"""One loaded MLflow pyfunc model, and invocations against it, one by one or batched.

The signature is enforced by pyfunc's ``predict`` itself, exactly as MLflow does it. An error that
MLflow raises for the input (a missing column, a wrong type) is a 400 naming the column. When the
model itself raises, the input is checked for the client mistakes a model cannot score: no rows,
or another number of columns than the model takes (its signature, or ``n_features_in_`` of a
scikit-learn-style model); those are 400 too, as in MLflow. Anything else the model raises is a
500 (a server failure, which SageMaker counts in ``Invocation5XXErrors``) whose message names only
the exception's type, while the traceback goes to the server log.

Batching: scikit-learn and gradient-boosting models predict each row on its own, and most of a
call's cost is fixed (2.6 ms for 1 row or 100 rows for a scikit-learn pipeline here), so requests
that queued while the worker was busy are predicted in one call when that cannot change a result:
a row-wise flavor, DataFrame inputs with the same columns, no ``params``, and one prediction per
row coming back. Requests kept as rows (:func:`codec.rows`) are also decoded together: one frame
is built and cast to the signature for the group, which is most of the per-request cost
otherwise. Whenever the combined decode or call fails, each request is decoded and predicted
alone, so one bad request gets its own 400 and the others their predictions.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from mlflow_plugins.errors import BadRequest, ModelFailure, PredictionTimeout
from mlflow_plugins.serving import codec
from mlflow_plugins.serving.http import Request, Response

log = logging.getLogger(__name__)
_INPUT_ERRORS = {"BAD_REQUEST", "INVALID_PARAMETER_VALUE", "INVALID_STATE"}
ROW_WISE_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm", "catboost"})


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
        self.row_wise = bool(ROW_WISE_FLAVORS & set(self.metadata.flavors))
        self.columns = _expected_columns(self.pyfunc, self.schema)
        self.keeps_rows = self.row_wise and codec.rows_schema(self.metadata, self.schema)
        self.names = self.schema.input_names() if self.keeps_rows else []

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
            mistake = self._client_mistake(data)
            if mistake is not None:
                log.info("model %s refused the input: %s (%s: %s)", self.path, mistake, type(error).__name__, error)
                raise BadRequest(detail=mistake) from None
            log.exception("model %s failed", self.path)
            raise ModelFailure(kind=type(error).__name__) from None

    def _client_mistake(self, data: Any) -> str | None:
        shape = getattr(data, "shape", None)
        if not shape:
            return None
        if shape[0] == 0:
            return "The input has no rows. Send at least one row."
        if self.columns is not None and len(shape) == 2 and shape[1] != self.columns:
            return (
                f"The input has {shape[1]} columns; the model takes {self.columns}. "
                f"Send rows of exactly {self.columns} values."
            )
        return None


def _expected_columns(pyfunc: Any, schema: Any) -> int | None:
    """How many columns the model takes, where it says so."""
    if schema is not None and schema.has_input_names():
        return None  # MLflow's schema enforcement matches columns by name (extra ones are ignored)
    if schema is not None and schema.is_tensor_spec() and len(schema.inputs) == 1:
        shape = schema.inputs[0].shape
        return shape[-1] if len(shape) == 2 and shape[-1] > 0 else None
    try:
        raw = pyfunc.get_raw_model()
    except Exception:  # flavors without a raw model
        return None
    count = getattr(raw, "n_features_in_", None)
    return int(count) if isinstance(count, (int, np.integer)) else None


@dataclass
class Invocation:
    """A request waiting for its predictions: decoded by MLflow's parser (``parsed``), or kept as
    rows (``rows``) to be decoded with the others of its batch."""

    output: str
    parsed: codec.Parsed | None = None
    rows: codec.Rows | None = None

    def batch_key(self, model: ServedModel) -> tuple | None:
        """Requests with the same key can be predicted in one call; ``None``: never batched."""
        if self.rows is not None:
            return self.rows.key
        parsed = self.parsed
        assert parsed is not None
        data = parsed.data
        if not model.row_wise or parsed.params or parsed.unwrapped or not isinstance(data, pd.DataFrame):
            return None
        return "frame", tuple(data.columns), tuple(str(t) for t in data.dtypes)

    def data(self, model: ServedModel) -> Any:
        if self.rows is not None:
            return codec.frame([self.rows], model.schema)
        assert self.parsed is not None
        return self.parsed.data

    @property
    def params(self) -> dict[str, Any] | None:
        return self.parsed.params if self.parsed is not None else None

    @property
    def unwrapped(self) -> bool:
        return self.parsed.unwrapped if self.parsed is not None else False

    def respond(self, predictions: Any, batch: int) -> Response:
        body = codec.encode(predictions, self.output, self.unwrapped)
        return Response(200, body, content_type=self.output, headers={"X-Batch-Size": str(batch)})


def decode(model: ServedModel, request: Request) -> Invocation:
    output = codec.choose_output(request.headers.get("accept"))
    content_type = request.headers.get("content-type", "")
    read = codec.read(request.body, content_type, model.metadata, model.schema, model.names)
    return Invocation(output, rows=read) if isinstance(read, codec.Rows) else Invocation(output, parsed=read)


def invoke(model: ServedModel, request: Request, timeout: float | None) -> Response:
    """Decode the payload, predict within ``timeout`` seconds, encode the predictions."""
    return predict_one(model, decode(model, request), timeout)


def predict_one(model: ServedModel, invocation: Invocation, timeout: float | None) -> Response:
    data = invocation.data(model)
    with deadline(timeout):
        predictions = model.predict(data, invocation.params)
    return invocation.respond(predictions, 1)


def predict_together(model: ServedModel, group: list[Invocation], timeout: float | None) -> list[Response] | None:
    """One predict call for the group (one decode too, for rows), split back per request; ``None``
    if that is not possible. A timeout is raised (every request of the group waited for it), not
    retried one by one."""
    try:
        if group[0].rows is not None:
            kept = [invocation.rows for invocation in group]
            data = codec.frame(kept, model.schema)  # type: ignore[arg-type]
            rows = [k.count for k in kept]  # type: ignore[union-attr]
        else:
            frames = [invocation.parsed.data for invocation in group]  # type: ignore[union-attr]
            data = pd.concat(frames, ignore_index=True)
            rows = [len(frame) for frame in frames]
        with deadline(timeout):
            predictions = model.predict(data, None)
    except PredictionTimeout:
        raise
    except Exception:
        return None
    if _length(predictions) != sum(rows):  # a row-wise model answers one prediction per row
        return None
    bounds = np.cumsum([0, *rows])
    return [inv.respond(_slice(predictions, lo, hi), len(group)) for inv, lo, hi in zip(group, bounds[:-1], bounds[1:])]


def _length(predictions: Any) -> int | None:
    try:
        return len(predictions)
    except TypeError:
        return None


def _slice(predictions: Any, start: int, stop: int) -> Any:
    if isinstance(predictions, (pd.DataFrame, pd.Series)):
        return predictions.iloc[start:stop].reset_index(drop=True)
    return predictions[start:stop]


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

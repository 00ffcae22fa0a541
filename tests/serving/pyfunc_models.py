"""Small pyfunc models for runtime tests (bundled with each model through ``code_paths``)."""

from __future__ import annotations

import time

import mlflow.pyfunc


class Failing(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("secret database password is hunter2")


class Sleepy(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        time.sleep(float(model_input["seconds"].iloc[0]))
        return [0]


class SlowToLoad(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        time.sleep(3)

    def predict(self, context, model_input, params=None):
        return list(range(len(model_input)))


class Echo(mlflow.pyfunc.PythonModel):
    """Returns its params, to check that params reach the model."""

    def predict(self, context, model_input, params=None):
        return [dict(params or {}) | {"rows": len(model_input)}]


def _wait_for_release(gate: str) -> None:
    """Record that a prediction started (by pid), then hold it until the test creates ``release``."""
    import os
    import uuid
    from pathlib import Path

    folder = Path(gate)
    (folder / f"started-{os.getpid()}-{uuid.uuid4().hex}").touch()
    for _ in range(1200):  # at most 60 s, so a forgotten gate never hangs a server
        if (folder / "release").exists():
            return
        time.sleep(0.05)


class Gate(mlflow.pyfunc.PythonModel):
    """Predicts only once the test opens the gate (the folder in column ``gate``); returns the pid."""

    def predict(self, context, model_input, params=None):
        import os

        _wait_for_release(str(model_input["gate"].iloc[0]))
        return [os.getpid()] * len(model_input)


class Marker(mlflow.pyfunc.PythonModel):
    """Answers its own tag for every row, so a test can tell two models apart."""

    def __init__(self, tag: str = "marker") -> None:
        self.tag = tag

    def predict(self, context, model_input, params=None):
        return [self.tag] * len(model_input)


class Inspect(mlflow.pyfunc.PythonModel):
    """Returns the dtypes it received (MLflow's own scoring-server test model); fails on request."""

    def predict(self, context, model_input, params=None):
        if (params or {}).get("fail"):
            raise RuntimeError("asked to fail")
        return [[name, str(dtype)] for name, dtype in model_input.dtypes.items()]


try:
    from sklearn.base import BaseEstimator
except ImportError:  # pragma: no cover - scikit-learn is a test dependency
    BaseEstimator = object


class GatedDoubler(BaseEstimator):
    """A row-wise scikit-learn model (batched by the runtime): ``2 * x``; a row with a ``gate``
    folder holds the prediction until the test releases it."""

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        gates = [g for g in X["gate"].tolist() if isinstance(g, str) and g]
        if gates:
            _wait_for_release(gates[0])
        return (X["x"].astype(float) * 2).to_numpy()


class Busy(mlflow.pyfunc.PythonModel):
    """Computes in Python (holding the GIL) for ``seconds``: a slow CPU-bound model."""

    def predict(self, context, model_input, params=None):
        until = time.perf_counter() + float(model_input["seconds"].iloc[0])
        spins = 0
        while time.perf_counter() < until:
            spins += 1
        return [spins]

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

"""Choose what to serve from the settings, then run the server."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from mlflow_plugins.serving.app import SingleModelApp
from mlflow_plugins.serving.http import Handler
from mlflow_plugins.serving.model import ServedModel
from mlflow_plugins.serving.server import Listener, run
from mlflow_plugins.serving.settings import ServeSettings


def make_app(settings: ServeSettings, model_dir: str) -> Handler:
    return SingleModelApp(partial(ServedModel, model_dir), settings.timeout)


def start(settings: ServeSettings, announce: Callable[[int], None]) -> None:
    import mlflow.pyfunc  # noqa: F401  (imported once, before workers fork)

    model_dir = settings.model_dir
    listener = Listener(settings.host, settings.port, settings.workers, settings.max_body)
    run(listener, partial(make_app, settings, model_dir), announce)

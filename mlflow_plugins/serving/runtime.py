"""Choose what to serve from the settings, then run the server."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from mlflow_plugins.serving.app import SingleModelApp
from mlflow_plugins.serving.cache import MB, ModelCache
from mlflow_plugins.serving.http import App
from mlflow_plugins.serving.mme import MultiModelApp
from mlflow_plugins.serving.model import ServedModel
from mlflow_plugins.serving.registry import SharedRegistry
from mlflow_plugins.serving.server import Listener, run
from mlflow_plugins.serving.settings import ServeSettings


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else 4 GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 1024 * MB


def memory_budget_bytes(settings: ServeSettings) -> int:
    """Per worker: the setting, else half of the available memory shared by the workers."""
    if settings.memory_budget_mb is not None:
        return int(settings.memory_budget_mb * MB)
    return available_memory_bytes() // 2 // settings.workers


def single_model_app(settings: ServeSettings, model_dir: str) -> App:
    return SingleModelApp(partial(ServedModel, model_dir), settings.timeout)


def multi_model_app(settings: ServeSettings, registry_path: str) -> App:
    cache = ModelCache(settings.max_models, memory_budget_bytes(settings))
    return MultiModelApp(SharedRegistry(registry_path), cache, settings.timeout)


def start(settings: ServeSettings, announce: Callable[[int], None]) -> None:
    import mlflow.pyfunc  # noqa: F401  (imported once, before workers fork)

    listener = Listener(settings.host, settings.port, settings.workers, settings.max_body)
    if settings.multi_model:
        with tempfile.TemporaryDirectory(prefix="mlflow-sagemaker-ops-mme-") as state:
            registry = str(Path(state) / "models.json")
            SharedRegistry(registry)
            run(listener, partial(multi_model_app, settings, registry), announce)
        return
    model_dir = settings.model_dir
    if settings.model_uri:
        from mlflow_plugins.serving.fetch import fetch_model

        model_dir = fetch_model(settings.model_uri, settings.cache_dir)
    run(listener, partial(single_model_app, settings, model_dir), announce)

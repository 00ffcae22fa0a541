"""The runtime's settings, from command-line options and SageMaker's environment variables.

Command-line options win over the environment. SageMaker's variables:

=================================  ==========================================  ===========
``SAGEMAKER_BIND_TO_PORT``         port to listen on                           8080
``SAGEMAKER_MODEL_SERVER_WORKERS`` worker processes                            CPU count
``SAGEMAKER_MODEL_SERVER_TIMEOUT`` seconds one prediction may take             60
``SAGEMAKER_MULTI_MODEL``          ``true`` serves the multi-model contract    false
=================================  ==========================================  ===========
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_plugins.errors import InvalidValue

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 60.0
MAX_PAYLOAD_MB = 6.0  # SageMaker's limit for a real-time invocation


@dataclass(frozen=True)
class ServeSettings:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    workers: int = 1
    timeout: float = DEFAULT_TIMEOUT
    max_body: int = int(MAX_PAYLOAD_MB * 2**20)
    multi_model: bool = False
    model_dir: str = DEFAULT_MODEL_DIR
    model_uri: str | None = None
    max_models: int = 100
    memory_budget_mb: float | None = None
    cache_dir: str | None = None


def _number(name: str, raw: Any, kind: type, minimum: float) -> Any:
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        noun = "a whole number" if kind is int else "a number"
        raise InvalidValue(
            name=name,
            value=raw,
            reason=f"it must be {noun} >= {minimum:g}",
            allowed=f"{noun} >= {minimum:g}",
            fix=f"Set {name} to such a value, or unset it.",
        )
    return value


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise InvalidValue(
        name=name,
        value=raw,
        reason="it is not a boolean",
        allowed="true, false, 1, 0",
        fix=f"Set {name}=true or {name}=false.",
    )


def resolve(options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ServeSettings:
    """Settings from ``options`` (``None`` = not given) over ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env

    def pick(option: str, variable: str | None, default: Any) -> tuple[str, Any]:
        if options.get(option) is not None:
            return f"--{option.replace('_', '-')}", options[option]
        if variable and env.get(variable, "") != "":
            return variable, env[variable]
        return f"--{option.replace('_', '-')}", default

    port = _number(*pick("port", "SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT), int, 0)
    workers = _number(*pick("workers", "SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1), int, 1)
    timeout = _number(*pick("timeout", "SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT), float, 0)
    max_mb = _number(*pick("max_payload_mb", None, MAX_PAYLOAD_MB), float, 0.001)
    name, raw_multi = pick("multi_model", "SAGEMAKER_MULTI_MODEL", False)
    multi = raw_multi if isinstance(raw_multi, bool) else _flag(name, str(raw_multi))
    budget = options.get("memory_budget_mb")
    if options.get("model_uri") and multi:
        raise InvalidValue(
            name="--model-uri",
            value=options["model_uri"],
            reason="it serves one model",
            allowed="--model-uri or --multi-model, not both",
            fix="Drop --multi-model to serve one model fetched at start.",
        )
    return ServeSettings(
        host=options.get("host") or "0.0.0.0",
        port=port,
        workers=workers,
        timeout=timeout,
        max_body=int(max_mb * 2**20),
        multi_model=multi,
        model_dir=options.get("model_dir") or DEFAULT_MODEL_DIR,
        model_uri=options.get("model_uri"),
        max_models=_number("--max-models", options.get("max_models") or 100, int, 1),
        memory_budget_mb=None if budget is None else _number("--memory-budget-mb", budget, float, 0.001),
        cache_dir=options.get("cache_dir"),
    )

"""The offline AWS sandbox: moto's server, extended with what moto lacks.

    with Sandbox(port=0, time_scale=0.002) as sandbox:
        sm = boto3.client("sagemaker", endpoint_url=sandbox.url, region_name="us-east-1")
        ...
        sandbox.control.add_fault("CreateEndpoint", kind="throttle", count=2)

See README.md ("The AWS sandbox") for what it adds and where it may differ from AWS, and
docs/sandbox-audit.md for every AWS operation the suite calls against what the sandbox does.

The names below are imported on first use, so ``mlflow_plugins.sandbox.control`` can be imported
without moto (the ``[sandbox]`` extra); the rest says how to install it when it is missing.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Sandbox", "SandboxControl", "Timings", "EXECUTION_ROLE_ARN", "DEFAULT_PORT", "DEFAULT_TIME_SCALE"]

_WHERE = {
    "Sandbox": "_sandbox",
    "DEFAULT_PORT": "_sandbox",
    "DEFAULT_TIME_SCALE": "_sandbox",
    "EXECUTION_ROLE_ARN": "_server",
    "SandboxControl": "control",
    "Timings": "sagemaker._rollout",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "moto":
            raise ImportError(
                "The AWS sandbox runs on moto, which is not installed. "
                "Run `pip install 'mlflow-sagemaker-ops[sandbox]'`."
            ) from None
        raise
    value = getattr(module, name)
    globals()[name] = value
    return value

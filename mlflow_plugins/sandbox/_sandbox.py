"""The :class:`Sandbox` object: one sandbox server in this process (see the package doc)."""

from __future__ import annotations

from typing import Any

from mlflow_plugins.sandbox._server import SandboxServer
from mlflow_plugins.sandbox._state import SandboxState
from mlflow_plugins.sandbox.control import SandboxControl
from mlflow_plugins.sandbox.sagemaker._rollout import Timings
from mlflow_plugins.sandbox.sagemaker._serving_host import MAX_PROCESSES_PER_VARIANT

DEFAULT_PORT = 5055
DEFAULT_TIME_SCALE = 0.01


class Sandbox:
    """One sandbox in this process (moto's backends are process-wide: at most one at a time)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        time_scale: float = DEFAULT_TIME_SCALE,
        timings: Timings | None = None,
        verbose: bool = False,
        instance_cap: int = MAX_PROCESSES_PER_VARIANT,
    ) -> None:
        """``instance_cap``: at most this many serving processes per variant, whatever its
        instance count (each costs memory and about a second to start)."""
        state = SandboxState(time_scale=time_scale, timings=timings or Timings(), instance_cap=instance_cap)
        self._server = SandboxServer(state, host, port, verbose)
        self.control = SandboxControl("")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> Sandbox:
        self._server.start()
        self.control = SandboxControl(self.url)
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        self._server.reset()

    def env(self) -> dict[str, str]:
        """Environment that points boto3 (and subprocesses) at this sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""The sandbox's process-wide state, shared by the patched moto handlers and the control API.

moto's backends are module globals, so one process holds at most one sandbox; its extensions
reach their state through :func:`current`.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_plugins.sandbox._clock import Scheduler
from mlflow_plugins.sandbox._faults import FaultPlan
from mlflow_plugins.sandbox.sagemaker._hosting import HealthSwitches, VariantHost
from mlflow_plugins.sandbox.sagemaker._rollout import Lifecycle, Timings


@dataclass
class SandboxState:
    time_scale: float
    instance_cap: int = 3  # serving processes per variant at most (_serving_host.MAX_PROCESSES_PER_VARIANT)
    timings: Timings = field(default_factory=Timings)
    lock: threading.RLock = field(default_factory=threading.RLock)
    switches: HealthSwitches = field(default_factory=HealthSwitches)
    faults: FaultPlan = field(default_factory=FaultPlan)
    host: VariantHost | None = None
    scheduler: Scheduler | None = None
    lifecycle: Lifecycle | None = None
    tasks: Any = None  # _ecs_tasks.TaskHost: the ECS tasks' processes
    logs: Any = None  # _ecs_tasks.LogSink
    url: str = ""  # where the sandbox answers (tasks reach S3 through it)
    shadow: Any = None  # sagemaker._traffic.ShadowMirror: copies to shadow variants, mirrored pairs
    # Every AWS call answered since the last reset: (Unix time, service, operation), newest 10,000.
    calls: deque = field(default_factory=lambda: deque(maxlen=10_000))

    def record_call(self, service: str | None, operation: str | None) -> None:
        self.calls.append((time.time(), service, operation))

    def start(self) -> SandboxState:
        from mlflow_plugins.sandbox._ecs_tasks import LogSink, TaskHost
        from mlflow_plugins.sandbox._server import ACCOUNT_ID
        from mlflow_plugins.sandbox.sagemaker._alarms import alarms_in_alarm
        from mlflow_plugins.sandbox.sagemaker._serving_host import ServingHost
        from mlflow_plugins.sandbox.sagemaker._traffic import ShadowMirror

        self.scheduler = Scheduler(self.lock, self.time_scale)
        self.host = self.host or ServingHost(self.switches, cap=self.instance_cap)
        self.logs = LogSink(ACCOUNT_ID, self.lock)
        self.tasks = TaskHost(Path(tempfile.mkdtemp(prefix="mlflow-sagemaker-ops-ecs-")), self.logs)
        self.lifecycle = Lifecycle(self.scheduler, self.host, self.timings, alarms_in_alarm)
        self.shadow = ShadowMirror()
        return self

    def clear(self) -> None:
        """Forget every simulated operation in flight (reset)."""
        with self.lock:
            assert self.scheduler is not None and self.host is not None
            self.scheduler.clear()
            self.host.stop_all()
            self.tasks.stop_all()
            self.switches.clear()
            self.faults.clear()
            self.calls.clear()
            self.shadow.clear()
        _stop_transform_jobs()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.host is not None:
            self.host.stop_all()
        if self.tasks is not None:
            self.tasks.stop_all()
        if self.shadow is not None:
            self.shadow.stop()
        _stop_transform_jobs()

    def task_env(self, region: str) -> dict[str, str]:
        """What an ECS task's container gets to reach AWS: the sandbox, with its credentials
        (on ECS, the task role's credentials come from the container credentials endpoint)."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }


def _stop_transform_jobs() -> None:
    from mlflow_plugins.sandbox.sagemaker._transform_api import stop_all

    stop_all()


_current: SandboxState | None = None


def current() -> SandboxState:
    if _current is None:
        raise RuntimeError("the sandbox extensions are installed but no sandbox is running")
    return _current


def activate(state: SandboxState | None) -> None:
    global _current
    _current = state

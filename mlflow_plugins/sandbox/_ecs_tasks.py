"""ECS tasks that really run: one serving-runtime process per task, on an address of its own.

On Fargate every task gets its own network interface (``awsvpc``), and the container listens on
its ``containerPort`` at the task's private IP. The sandbox gives each task its own loopback
address (``127.x.y.z``: Linux routes the whole of 127.0.0.0/8 to ``lo``) and reports it as the
task's ``privateIPv4Address``, so a client reaches a task the way it would inside the VPC.

A container runs when it is the suite's runtime: the image's entry point with a ``serve ...``
command (the ECS target writes ``["serve", "--model-uri", "s3://..."]``). Its environment is the
container's, plus credentials and ``AWS_ENDPOINT_URL`` for the sandbox (ECS hands the task
role's credentials to the container in the same spirit). A container that is anything else runs
nothing and counts as healthy at once, as moto's tasks did; the sandbox cannot run arbitrary
images.

Health, as ECS sees it: a process that exits stops its task ("Essential container in task
exited", with the exit code); a task that does not answer ``GET /ping`` within
``STARTUP_SECONDS`` of real time fails its container health check; the control API can make a
service's tasks fail theirs. With an ``awslogs`` log configuration, the runtime's output goes to
that CloudWatch Logs group, stream ``<prefix>/<container>/<task id>``; a group that does not
exist stops the task, as on Fargate.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from mlflow_plugins.sandbox._launcher import Launched, launch
from mlflow_plugins.sandbox.sagemaker._serving_host import _ANNOUNCE

log = logging.getLogger(__name__)
STARTUP_SECONDS = 180.0
HEALTHY, PENDING = "HEALTHY", "PENDING"


@dataclass
class TaskProcess:
    """One task's runtime process (``process`` is None for a container the sandbox cannot run)."""

    task_id: str
    ip: str
    port: int
    process: Launched | None
    logs: tuple[str, str, str] | None = None  # (region, group, stream)
    started: float = field(default_factory=time.monotonic)
    output: deque = field(default_factory=lambda: deque(maxlen=200))
    announced: bool = False
    refused: str | None = None  # why the task could not start (its stoppedReason)

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def read_output(self, sink: Any) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if _ANNOUNCE.match(line):
                self.announced = True
            self.output.append(line.rstrip())
            if self.logs is not None:
                sink(self.logs, line.rstrip())

    def tail(self, lines: int = 3) -> str:
        return " | ".join(list(self.output)[-lines:])


@dataclass(frozen=True)
class Health:
    state: str  # HEALTHY, PENDING, or STOPPED
    reason: str = ""
    exit_code: int | None = None


def runtime_command(container: dict[str, Any]) -> list[str] | None:
    """The runtime's arguments, when the container runs the suite's runtime; else None."""
    command = list(container.get("command") or [])
    entry = container.get("entryPoint")
    if entry not in (None, [], ["mlflow-sagemaker-ops"]) or not command or command[0] != "serve":
        return None
    return command[1:]


class TaskHost:
    """Starts, checks and stops the sandbox's task processes."""

    def __init__(self, workdir: Path, logs: LogSink) -> None:
        self.workdir = workdir
        self.logs = logs  # LogSink: writes a runtime's output to CloudWatch Logs
        self.tasks: dict[str, TaskProcess] = {}
        self.failing: set[tuple[str, str]] = set()  # (cluster, service) whose tasks fail health checks
        self.processes = True  # False: tasks run no process and pass their health check (/_sandbox/hosting)
        self._used: set[str] = set()

    def start(
        self, task_id: str, container: dict[str, Any], sandbox_env: dict[str, str], refused: str | None = None
    ) -> TaskProcess:
        ip = self._address()
        args = runtime_command(container)
        ports = container.get("portMappings") or [{}]
        environment = {item["name"]: str(item["value"]) for item in container.get("environment") or []}
        port = int(ports[0].get("containerPort") or environment.get("SAGEMAKER_BIND_TO_PORT") or 8080)
        if args is None or refused or not self.processes:
            task = TaskProcess(task_id, ip, port, None, refused=refused)
            self.tasks[task_id] = task
            return task
        logs = self.logs.stream_for(container, task_id)
        home = self.workdir / task_id
        home.mkdir(parents=True, exist_ok=True)
        extra = [] if "SAGEMAKER_MODEL_SERVER_WORKERS" in environment else ["--workers", "1"]
        process = launch(
            ["serve", *args, "--host", ip, *extra],
            {**os.environ, **sandbox_env, **environment, "XDG_CACHE_HOME": str(home)},
        )
        task = TaskProcess(task_id, ip, port, process, logs)
        threading.Thread(
            target=task.read_output, args=(self.logs.write,), name=f"sandbox-task-{task_id[:8]}", daemon=True
        ).start()
        self.tasks[task_id] = task
        return task

    def _address(self) -> str:
        while True:  # 15 million addresses: collisions between concurrent sandboxes are negligible
            ip = f"127.{random.randint(16, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            if ip not in self._used:
                self._used.add(ip)
                return ip

    def health(self, task_id: str, cluster: str, service: str) -> Health:
        task = self.tasks.get(task_id)
        if task is None:
            return Health("STOPPED", "Task stopped by the sandbox")
        if task.refused:
            return Health("STOPPED", task.refused)
        if (cluster, service) in self.failing:
            return Health("STOPPED", "Task failed container health checks")
        if task.process is None:
            return Health(HEALTHY)
        code = task.process.poll()
        if code is not None:
            return Health("STOPPED", "Essential container in task exited", code)
        if task.announced:
            try:
                if requests.get(task.url + "/ping", timeout=2).status_code == 200:
                    return Health(HEALTHY)
            except requests.RequestException:
                pass
        if time.monotonic() - task.started > STARTUP_SECONDS:
            return Health("STOPPED", "Task failed container health checks")
        return Health(PENDING)

    def stop(self, task_id: str) -> None:
        task = self.tasks.pop(task_id, None)
        if task is not None and task.process is not None:
            task.process.stop()

    def stop_all(self) -> None:
        for task_id in list(self.tasks):
            self.stop(task_id)
        self.failing.clear()
        self.processes = True


class LogSink:
    """Writes a task's output to the CloudWatch Logs group of its ``awslogs`` configuration."""

    def __init__(self, account: str, lock: threading.RLock) -> None:
        self.account, self.lock = account, lock

    def _backend(self, region: str) -> Any:
        from moto.logs.models import logs_backends

        return logs_backends[self.account][region]

    def missing_group(self, container: dict[str, Any]) -> str | None:
        """The stoppedReason of a task whose log group does not exist (Fargate's wording)."""
        options = _awslogs(container)
        if options is None or options["awslogs-group"] in self._backend(options["awslogs-region"]).groups:
            return None
        return (
            "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
            "failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist."
        )

    def stream_for(self, container: dict[str, Any], task_id: str) -> tuple[str, str, str] | None:
        options = _awslogs(container)
        if options is None:
            return None
        stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container.get('name', 'container')}/{task_id}"
        with self.lock:
            group = self._backend(options["awslogs-region"]).groups.get(options["awslogs-group"])
            if group is None:
                return None
            group.create_log_stream(stream)
        return options["awslogs-region"], options["awslogs-group"], stream

    def write(self, where: tuple[str, str, str], line: str) -> None:
        region, group_name, stream = where
        with self.lock:
            group = self._backend(region).groups.get(group_name)
            if group is not None and stream in group.streams:  # deleted with the deployment: dropped
                group.put_log_events(stream, [{"timestamp": int(time.time() * 1000), "message": line}])


def _awslogs(container: dict[str, Any]) -> dict[str, str] | None:
    config = container.get("logConfiguration") or {}
    options = config.get("options") or {}
    if config.get("logDriver") != "awslogs" or "awslogs-group" not in options or "awslogs-region" not in options:
        return None
    return options

"""The main job's registry side: ``mlflow server --app-name registry-hooks`` and the controller,
as subprocesses beside the sandbox, with what the demo needs to drive and watch them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
DEPLOYMENT = "demo"


def policy(model: str, alarm: str, role: str) -> str:
    return f"""version: 1
deployments:
  {DEPLOYMENT}:
    model: {model}
    stage: Production
    target: sagemaker
    on_leave: delete
    max_attempts: 2
    config:
      execution_role_arn: {role}
      instance_count: 4
      strategy: canary
      canary_size: 25
      alarms: {alarm}
      bake_seconds: 900
      termination_wait_seconds: 60
"""


class Process:
    """A subprocess whose output is read until it announces itself, then drained."""

    def __init__(self, args: Sequence[str], env: dict[str, str], ready: str, timeout: float = 120) -> None:
        self.popen = subprocess.Popen(list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True)
        self.lines: list[str] = []
        announced = threading.Event()
        threading.Thread(target=self._read, args=(ready, announced), daemon=True).start()
        if not announced.wait(timeout) or self.popen.poll() is not None:
            self.stop()
            raise RuntimeError(f"{args[0]} {args[1]} did not start:\n{''.join(self.lines[-40:])}")

    def _read(self, ready: str, announced: threading.Event) -> None:
        for line in self.popen.stdout:
            self.lines.append(line)
            if ready in line:
                announced.set()
        announced.set()  # it exited: the caller sees poll() is not None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class Running:
    """Context manager: the MLflow server with the app plugin, and the controller."""

    def __init__(self, scratch: Path, backend: str, model: str, alarm: str, role: str, say: Callable[[str], None]) -> None:
        self.scratch, self.backend, self.model, self.say = scratch, backend, model, say
        self.db = f"sqlite:///{scratch / 'registry-hooks.db'}"
        (scratch / "deploy-policy.yaml").write_text(policy(model, alarm, role))
        self.processes: list[Process] = []

    def __enter__(self) -> Running:
        from mlflow.tracking import MlflowClient

        port, wake = _free_port(), _free_port()
        env = {**os.environ, "MLFLOW_REGISTRY_HOOKS_DB": self.db, "MLFLOW_REGISTRY_HOOKS_WAKE_URLS": f"http://127.0.0.1:{wake}",
               "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        try:
            self.processes.append(Process([str(BIN / "mlflow"), "server", "--app-name", "registry-hooks", "--backend-store-uri",
                                           self.backend, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                          env, "Uvicorn running on"))
            self.url = f"http://127.0.0.1:{port}"
            self.processes.append(Process([str(BIN / "mlflow-sagemaker-ops"), "hooks", "run", "--policy",
                                           str(self.scratch / "deploy-policy.yaml"), "--db", self.db, "--tracking-uri", self.url,
                                           "--listen", f"127.0.0.1:{wake}", "--replica-id", "demo"], env, "Controller demo:"))
        except Exception:
            self.__exit__()
            raise
        self.client = MlflowClient(self.url)
        self.say(f"registry hooks: mlflow server --app-name registry-hooks on {self.url}; controller on 127.0.0.1:{wake} "
                 f"with {self.scratch.name}/deploy-policy.yaml ({self.model} Production -> endpoint {DEPLOYMENT})")
        return self

    def __exit__(self, *_: Any) -> None:
        for process in reversed(self.processes):
            process.stop()

    def promote(self, version: str, stage: str) -> None:
        """A stage transition through the REST path the MLflow UI calls."""
        reply = requests.post(f"{self.url}/ajax-api/2.0/mlflow/model-versions/transition-stage", timeout=30, json={
            "name": self.model, "version": version, "stage": stage, "archive_existing_versions": stage == "Production"})
        reply.raise_for_status()
        self.say(f"transition: {self.model} version {version} -> {stage} (as the UI does it)")

    def status(self, version: str) -> dict[str, str]:
        prefix = f"deploy.{DEPLOYMENT}."
        tags = self.client.get_model_version(self.model, version).tags
        return {k[len(prefix):]: v for k, v in tags.items() if k.startswith(prefix)}

    def await_status(self, version: str, statuses: tuple[str, ...], timeout: float = 300) -> dict[str, str]:
        """The version's deploy tags once its status is one of ``statuses``. The registry has no
        watch API, so this reads the tags every 0.2 s, as any UI showing them does."""
        deadline, tick = time.monotonic() + timeout, threading.Event()
        while True:
            tags = self.status(version)
            if tags.get("status") in statuses:
                return tags
            if time.monotonic() > deadline or any(p.popen.poll() is not None for p in self.processes):
                raise RuntimeError(f"version {version} did not reach {'/'.join(statuses)} (tags {tags}):\n"
                                   + "".join(self.processes[-1].lines[-40:]))
            tick.wait(0.2)

    def audit(self) -> list[str]:
        done = subprocess.run([str(BIN / "mlflow-sagemaker-ops"), "hooks", "log", "--db", self.db, "--deployment", DEPLOYMENT],
                              capture_output=True, text=True, timeout=60, check=True)
        return [line[line.index(DEPLOYMENT):] for line in done.stdout.splitlines() if " started " not in line]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

"""The main job's registry side: ``mlflow server --app-name registry-hooks`` and the controller,
as subprocesses beside the sandbox, with what the demo needs to drive and watch them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
DEPLOYMENT = "demo"


CAPTURE = "s3://demo-capture/traffic"  # where the endpoint captures its requests (the drift loop reads them)


def policy(model: str, alarm: str, role: str, project: Path) -> str:
    """The demo's deployment: canary with an alarm, data capture, and a drift loop that reads the
    traffic since its last round every 10 s and, on drift, retrains (rehearsal, weeks 4-7 of the
    scenario), evaluates and promotes to Production."""
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
      data_capture_config:
        EnableCapture: true
        InitialSamplingPercentage: 100
        DestinationS3Uri: {CAPTURE}
        CaptureOptions: [{{CaptureMode: Input}}]
    monitor:
      every: 10s
      window: 10s
      on_drift: retrain
      project: {project}
      experiment: demo
      retrain: {{new_data: "scenario:truck-delay?weeks=4-7", strategy: rehearsal}}
      evaluate: {{data: "scenario:truck-delay?weeks=7&seed=7", max_regression: 0.02}}
"""


class Process:
    """A subprocess whose output is read until it announces itself, then drained."""

    def __init__(self, args: Sequence[str], env: dict[str, str], ready: str, timeout: float = 120) -> None:
        self.popen = subprocess.Popen(
            list(args),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        announced = threading.Event()
        threading.Thread(target=self._read, args=(ready, announced), daemon=True).start()
        if not announced.wait(timeout) or self.popen.poll() is not None:
            self.stop()
            raise RuntimeError(f"{args[0]} {args[1]} did not start:\n{''.join(self.lines[-40:])}")

    def _read(self, ready: str, announced: threading.Event) -> None:
        for line in self.popen.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
            if ready in line:
                announced.set()
        announced.set()  # it exited: the caller sees poll() is not None
        with self.changed:
            self.changed.notify_all()

    def wait_for_line(self, accept: Callable[[str], bool], after: int, timeout: float) -> str | None:
        """The first line from number ``after`` on that ``accept`` takes, waiting for new output
        (woken by the reader thread, no polling); None when the time is up or the process ended."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = next((line for line in self.lines[after:] if accept(line)), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0 or self.popen.poll() is not None:
                    return found
                after = len(self.lines)
                self.changed.wait(remaining)

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

    def __init__(
        self,
        scratch: Path,
        backend: str,
        model: str,
        alarm: str,
        role: str,
        say: Callable[[str], None],
        project: Path,
    ) -> None:
        self.scratch, self.backend, self.model, self.say = scratch, backend, model, say
        self.db = f"sqlite:///{scratch / 'registry-hooks.db'}"
        (scratch / "deploy-policy.yaml").write_text(policy(model, alarm, role, project))
        self.processes: list[Process] = []
        self.mark = 0

    def __enter__(self) -> Running:
        from mlflow.tracking import MlflowClient

        port, wake = _free_port(), _free_port()
        env = {
            **os.environ,
            "MLFLOW_REGISTRY_HOOKS_DB": self.db,
            "MLFLOW_REGISTRY_HOOKS_WAKE_URLS": f"http://127.0.0.1:{wake}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # the app plugin signs its wake-ups with it, and the controller accepts only those
            "MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN": os.environ.get("MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN") or uuid.uuid4().hex,
        }
        try:
            self.processes.append(
                Process(
                    [
                        str(BIN / "mlflow"),
                        "server",
                        "--app-name",
                        "registry-hooks",
                        "--backend-store-uri",
                        self.backend,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--workers",
                        "1",
                    ],
                    env,
                    "Uvicorn running on",
                )
            )
            self.url = f"http://127.0.0.1:{port}"
            self.processes.append(
                Process(
                    [
                        str(BIN / "mlflow-sagemaker-ops"),
                        "hooks",
                        "run",
                        "--policy",
                        str(self.scratch / "deploy-policy.yaml"),
                        "--db",
                        self.db,
                        "--tracking-uri",
                        self.url,
                        "--listen",
                        f"127.0.0.1:{wake}",
                        "--replica-id",
                        "demo",
                    ],
                    env,
                    "Controller demo:",
                )
            )
        except Exception:
            self.__exit__()
            raise
        self.client = MlflowClient(self.url)
        self.say(
            f"registry hooks: mlflow server --app-name registry-hooks on {self.url}; controller on 127.0.0.1:{wake} "
            f"with {self.scratch.name}/deploy-policy.yaml ({self.model} Production -> endpoint {DEPLOYMENT})"
        )
        return self

    def __exit__(self, *_: Any) -> None:
        for process in reversed(self.processes):
            process.stop()

    def promote(self, version: str, stage: str) -> None:
        """A stage transition through the REST path the MLflow UI calls. What the controller logs
        from here on is what :meth:`await_status` looks at."""
        self.mark = len(self.processes[-1].lines)
        reply = requests.post(
            f"{self.url}/ajax-api/2.0/mlflow/model-versions/transition-stage",
            timeout=30,
            json={
                "name": self.model,
                "version": version,
                "stage": stage,
                "archive_existing_versions": stage == "Production",
            },
        )
        reply.raise_for_status()
        self.say(f"transition: {self.model} version {version} -> {stage} (as the UI does it)")

    def status(self, version: str) -> dict[str, str]:
        prefix = f"deploy.{DEPLOYMENT}."
        tags = self.client.get_model_version(self.model, version).tags
        return {k[len(prefix) :]: v for k, v in tags.items() if k.startswith(prefix)}

    def await_status(self, version: str, statuses: tuple[str, ...], timeout: float = 300) -> dict[str, str]:
        """The version's deploy tags once the controller has logged one of ``statuses`` for it
        since the last :meth:`promote` (it logs each status after writing its tags)."""
        wanted = tuple(f"{DEPLOYMENT}: version {version} is {status}\n" for status in statuses)
        controller = self.processes[-1]
        if controller.wait_for_line(lambda line: line.endswith(wanted), self.mark, timeout) is None:
            raise RuntimeError(
                f"version {version} did not reach {'/'.join(statuses)} (tags {self.status(version)}):\n"
                + "".join(controller.lines[-40:])
            )
        return self.status(version)

    def audit(self) -> list[str]:
        done = subprocess.run(
            [str(BIN / "mlflow-sagemaker-ops"), "hooks", "log", "--db", self.db, "--deployment", DEPLOYMENT],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [line[line.index(DEPLOYMENT) :] for line in done.stdout.splitlines() if " started " not in line]


def _die_with_parent() -> None:
    """In the child, before it runs (Linux): SIGTERM when the demo's process ends, however it ends
    (a SIGKILL runs none of the demo's own cleanup), so no server or controller outlives it."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except OSError:
        pass  # another libc: the demo's own cleanup is all there is


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

"""Variants that really serve: one serving-runtime process per production (or shadow) variant.

For a variant whose model has a ``ModelDataUrl``, launching reads the archive from the sandbox's
S3 (in-process), extracts it, and starts ``mlflow-sagemaker-ops serve`` on a free port with the
container's ``Environment``; a ``Mode: MultiModel`` container starts in multi-model mode, its
models fetched from the S3 prefix on first invoke. The health check is the container's
``GET /ping``, as SageMaker does it.

Where the sandbox differs from SageMaker: one process serves a variant whatever its instance
count; a variant with no ``ModelDataUrl`` runs nothing (the sandbox cannot run arbitrary images)
and answers invocations with an error; the start-up health check waits up to
``STARTUP_SECONDS`` of real time, whatever the time scale.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests
from moto.s3.models import s3_backends

from mlflow_plugins.sandbox.sagemaker._endpoint import Fleet, Variant
from mlflow_plugins.sandbox.sagemaker._hosting import PENDING, HealthSwitches, health_failure

log = logging.getLogger(__name__)
STARTUP_SECONDS = 180.0
_ANNOUNCE = re.compile(r"^Serving on http://[^:]+:(\d+)")
_RUNTIME = [sys.executable, "-c", "from mlflow_plugins.cli import cli; cli()", "serve"]


@dataclass
class Container:
    """One running serving-runtime process."""

    variant: str
    process: subprocess.Popen
    multi_model: bool
    model_data: str
    port: int | None = None
    output: deque = field(default_factory=lambda: deque(maxlen=40))
    models: dict[str, str] = field(default_factory=dict)  # MME: TargetModel -> local directory
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def read_output(self) -> None:
        for line in self.process.stdout:
            match = _ANNOUNCE.match(line)
            if match:
                self.port = int(match.group(1))
            self.output.append(line.rstrip())

    def tail(self) -> str:
        return " | ".join(list(self.output)[-3:])


def s3_bytes(account: str, url: str) -> bytes:
    parsed = urlparse(url)
    return s3_backends[account]["aws"].get_object(parsed.netloc, parsed.path.lstrip("/")).value


def extract_model(account: str, url: str, target: Path) -> Path:
    """Unpack the model.tar.gz at ``url`` (the sandbox's S3) into ``target``."""
    data = s3_bytes(account, url)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(target, filter="data")
    return target


def download_failure(url: str) -> str:
    return (f'Failed to download model data for container "primary" from URL: "{url}". Please ensure '
            "that there is an object located at the URL and that the role passed to CreateModel has "
            "permissions to download the object.")


class ServingHost:
    """Runs each served variant as a process; health from ``/ping`` and the control switches."""

    def __init__(self, switches: HealthSwitches, workdir: str | None = None) -> None:
        self.switches = switches
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="mlflow-sagemaker-ops-sandbox-"))
        self.containers: dict[tuple[str, str, str], Container] = {}
        self.failures: dict[tuple[str, str, str], str] = {}
        self.started: dict[tuple[str, str], float] = {}

    def launch(self, endpoint: str, fleet: Fleet) -> None:
        self.started[(endpoint, fleet.config_name)] = time.monotonic()
        for variant in fleet.all_variants():
            key = (endpoint, fleet.config_name, variant.name)
            url = variant.container.get("ModelDataUrl")
            if not url or key in self.containers:
                continue
            try:
                self.containers[key] = self._start(key, fleet.account, variant, url)
            except Exception as error:  # missing object, bad archive: the endpoint fails with the reason
                log.info("sandbox: variant %s cannot start: %s", key, error)
                self.failures[key] = download_failure(url)

    def _start(self, key: tuple[str, str, str], account: str, variant: Variant, url: str) -> Container:
        multi = variant.container.get("Mode") == "MultiModel"
        target = self.workdir.joinpath(*key)
        args = ["--multi-model"] if multi else ["--model-dir", str(extract_model(account, url, target / "model"))]
        environment = {k: str(v) for k, v in (variant.container.get("Environment") or {}).items()}
        process = subprocess.Popen(
            [*_RUNTIME, *args, "--host", "127.0.0.1", "--port", "0", "--workers", "1"],
            env={**os.environ, **environment}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        container = Container(variant.name, process, multi, url)
        threading.Thread(target=container.read_output, name=f"sandbox-{variant.name}", daemon=True).start()
        return container

    def check(self, endpoint: str, fleet: Fleet) -> str | None:
        pending = False
        for variant in fleet.all_variants():
            key = (endpoint, fleet.config_name, variant.name)
            if self.switches.failing(endpoint, variant.name):
                return health_failure(endpoint, variant.name)
            if key in self.failures:
                return self.failures[key]
            status = self._ping(endpoint, variant.name, self.containers.get(key))
            if status not in (None, PENDING):
                return status
            pending = pending or status == PENDING
        started = self.started.get((endpoint, fleet.config_name), time.monotonic())
        if pending and time.monotonic() - started > STARTUP_SECONDS:
            return f"{health_failure(endpoint, fleet.variants[0].name)} It did not answer within {STARTUP_SECONDS:g} s."
        return PENDING if pending else None

    def _ping(self, endpoint: str, variant: str, container: Container | None) -> str | None:
        if container is None:
            return None
        if container.process.poll() is not None:
            return f"{health_failure(endpoint, variant)} The container exited: {container.tail()}"
        if container.port is None:
            return PENDING
        try:
            reply = requests.get(container.url + "/ping", timeout=2)
        except requests.RequestException:
            return PENDING
        if reply.status_code == 200:
            return None
        if reply.status_code == 503:
            return PENDING
        detail = reply.json().get("message", reply.text) if reply.headers.get("Content-Type", "").startswith("application/json") else reply.text
        return f"{health_failure(endpoint, variant)} {detail}"

    def container(self, endpoint: str, config: str, variant: str) -> Container | None:
        return self.containers.get((endpoint, config, variant))

    def stop(self, endpoint: str, fleet: Fleet) -> None:
        self.started.pop((endpoint, fleet.config_name), None)
        for variant in fleet.all_variants():
            key = (endpoint, fleet.config_name, variant.name)
            self.failures.pop(key, None)
            container = self.containers.pop(key, None)
            if container is not None:
                _terminate(container.process)

    def stop_all(self) -> None:
        for container in self.containers.values():
            _terminate(container.process)
        self.containers.clear()
        self.failures.clear()
        self.started.clear()


def _terminate(process: subprocess.Popen) -> None:
    """Stop a runtime process and reap it on a helper thread (the caller holds the sandbox lock)."""
    if process.poll() is None:
        process.terminate()

    def reap() -> None:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    threading.Thread(target=reap, daemon=True).start()


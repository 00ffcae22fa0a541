"""Variants that really serve: one serving-runtime process per instance of each production (or
shadow) variant, up to the host's cap (:data:`MAX_PROCESSES_PER_VARIANT` unless the sandbox sets
another: ``Sandbox(instance_cap=N)``).

For a variant whose model has a ``ModelDataUrl``, launching reads the archive from the sandbox's
S3 (in-process), extracts it, and starts ``mlflow-sagemaker-ops serve`` on a free port with the
container's ``Environment``, once per instance (forked from a warm launcher: :mod:`.._launcher`);
a ``Mode: MultiModel`` container starts in multi-model mode, its models fetched from the S3 prefix
on first invoke (each instance keeps its own cache, as on SageMaker). The health check is every instance's ``GET /ping``, as SageMaker does
it. :meth:`ServingHost.scale` starts or stops a variant's processes to follow its instance count
(rolling updates, UpdateEndpointWeightsAndCapacities, autoscaling), and :meth:`ServingHost.container`
spreads requests over a variant's running instances in turn.

Where the sandbox differs from SageMaker: a variant runs at most the cap's number of
processes whatever its instance count (each costs memory and about a second to start; counts
above it are reported by DescribeEndpoint but served by that many); a serverless variant runs
one; a variant with no ``ModelDataUrl`` runs nothing (the sandbox cannot run arbitrary images)
and answers invocations with an error; the start-up health check waits up to
``STARTUP_SECONDS`` of real time, whatever the time scale.
"""

from __future__ import annotations

import io
import logging
import os
import re
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

from mlflow_plugins.sandbox._launcher import Launched, launch
from mlflow_plugins.sandbox.sagemaker._endpoint import Fleet, Variant
from mlflow_plugins.sandbox.sagemaker._hosting import PENDING, HealthSwitches, health_failure
from mlflow_plugins.sandbox.sagemaker._images import missing_from_ecr, pull_failure

log = logging.getLogger(__name__)
STARTUP_SECONDS = 180.0
MAX_PROCESSES_PER_VARIANT = 3
_ANNOUNCE = re.compile(r"^Serving on http://[^:]+:(\d+)")


@dataclass
class Container:
    """One running serving-runtime process."""

    variant: str
    instance: int
    process: Launched
    multi_model: bool
    model_data: str
    port: int | None = None
    output: deque = field(default_factory=lambda: deque(maxlen=40))
    models: dict[str, str] = field(default_factory=dict)  # MME: TargetModel -> local directory
    answered: int = 0  # requests this instance answered
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
    return (
        f'Failed to download model data for container "primary" from URL: "{url}". Please ensure '
        "that there is an object located at the URL and that the role passed to CreateModel has "
        "permissions to download the object."
    )


def processes_for(variant: Variant, count: int, cap: int = MAX_PROCESSES_PER_VARIANT) -> int:
    """How many processes serve ``variant`` at ``count`` instances."""
    if variant.serverless:
        return 1
    return max(0, min(count, cap))


Key = tuple[str, str, str]  # endpoint, endpoint config, variant


class ServingHost:
    """Runs each served variant's instances as processes; health from ``/ping`` and the control switches."""

    def __init__(
        self, switches: HealthSwitches, workdir: str | None = None, cap: int = MAX_PROCESSES_PER_VARIANT
    ) -> None:
        if cap < 1:
            raise ValueError(
                f"instance_cap={cap!r}: a variant needs at least 1 process; use 1 to "
                f"{MAX_PROCESSES_PER_VARIANT} (the default) or more if memory allows."
            )
        self.switches, self.cap, self.default_cap = switches, cap, cap
        # False: variants pass their health check without a process (``/_sandbox/hosting``), for
        # tests of the control plane alone; InvokeEndpoint then answers that nothing serves.
        self.processes = True
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="mlflow-sagemaker-ops-sandbox-"))
        self.containers: dict[tuple[str, str, str, int], Container] = {}
        self.failures: dict[Key, str] = {}
        self.started: dict[tuple[str, str], float] = {}
        self._turn: dict[Key, int] = {}

    def launch(self, endpoint: str, fleet: Fleet) -> None:
        for variant in fleet.all_variants():
            self.scale(endpoint, fleet, variant, variant.desired_count)

    def scale(self, endpoint: str, fleet: Fleet, variant: Variant, count: int) -> None:
        """Run ``min(count, cap)`` processes for ``variant`` (one if serverless): start the
        missing instances, stop the surplus (the newest first)."""
        key = (endpoint, fleet.config_name, variant.name)
        wanted = processes_for(variant, count, self.cap)
        running = self._instances(key)
        for index in running[wanted:]:
            self.containers.pop((*key, index)).process.stop()
        if wanted <= len(running) or key in self.failures:
            return
        missing = missing_from_ecr(variant.image, fleet.account)
        if missing:  # the pull fails before any container starts
            self.failures[key] = (
                f"{pull_failure(variant.name)} In the sandbox's ECR, {missing}: push "
                "the image, or register it with ECR's PutImage."
            )
            return
        url = variant.container.get("ModelDataUrl")
        if not url:
            return
        if not self.processes:  # the archive is still fetched and checked, as a container's start would
            if variant.container.get("Mode") != "MultiModel":
                try:
                    extract_model(fleet.account, url, self.workdir.joinpath(*key) / "model")
                except Exception as error:  # noqa: BLE001 - the endpoint fails with the reason
                    log.info("sandbox: variant %s cannot start: %s", key, error)
                    self.failures[key] = download_failure(url)
            return
        self.started[(endpoint, fleet.config_name)] = time.monotonic()  # new instances get their start-up time
        free = [i for i in range(self.cap) if (*key, i) not in self.containers]
        for index in free[: wanted - len(running)]:
            try:
                self.containers[(*key, index)] = self._start(key, index, fleet.account, variant, url)
            except Exception as error:  # missing object, bad archive: the endpoint fails with the reason
                log.info("sandbox: variant %s cannot start: %s", key, error)
                self.failures[key] = download_failure(url)
                return

    def running(self, endpoint: str, config: str, variant: str) -> int:
        """How many processes serve the variant now."""
        return len(self._instances((endpoint, config, variant)))

    def _instances(self, key: Key) -> list[int]:
        return sorted(k[3] for k in self.containers if k[:3] == key)

    def _start(self, key: Key, index: int, account: str, variant: Variant, url: str) -> Container:
        multi = variant.container.get("Mode") == "MultiModel"
        target = self.workdir.joinpath(*key)
        model_dir = target / "model"
        if not multi and not model_dir.exists():  # the instances of a variant share the extracted model
            extract_model(account, url, model_dir)
        args = ["--multi-model"] if multi else ["--model-dir", str(model_dir)]
        environment = {k: str(v) for k, v in (variant.container.get("Environment") or {}).items()}
        process = launch(
            ["serve", *args, "--host", "127.0.0.1", "--port", "0", "--workers", "1"], {**os.environ, **environment}
        )
        container = Container(variant.name, index, process, multi, url)
        name = f"sandbox-{variant.name}-{index}"
        threading.Thread(target=container.read_output, name=name, daemon=True).start()
        return container

    def check(self, endpoint: str, fleet: Fleet) -> str | None:
        pending = False
        for variant in fleet.all_variants():
            key = (endpoint, fleet.config_name, variant.name)
            if self.switches.failing(endpoint, variant.name):
                return health_failure(endpoint, variant.name)
            if key in self.failures:
                return self.failures[key]
            for index in self._instances(key):
                status = self._ping(endpoint, variant.name, self.containers[(*key, index)])
                if status not in (None, PENDING):
                    return status
                pending = pending or status == PENDING
        started = self.started.get((endpoint, fleet.config_name), time.monotonic())
        if pending and time.monotonic() - started > STARTUP_SECONDS:
            return f"{health_failure(endpoint, fleet.variants[0].name)} It did not answer within {STARTUP_SECONDS:g} s."
        return PENDING if pending else None

    def _ping(self, endpoint: str, variant: str, container: Container) -> str | None:
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
        json_reply = reply.headers.get("Content-Type", "").startswith("application/json")
        detail = reply.json().get("message", reply.text) if json_reply else reply.text
        return f"{health_failure(endpoint, variant)} {detail}"

    def container(self, endpoint: str, config: str, variant: str) -> Container | None:
        """The next running instance of the variant, in turn (``None`` when none has started)."""
        key = (endpoint, config, variant)
        ready = [self.containers[(*key, i)] for i in self._instances(key)]
        ready = [c for c in ready if c.port is not None and c.process.poll() is None] or ready
        if not ready:
            return None
        turn = self._turn.get(key, 0)
        self._turn[key] = turn + 1
        return ready[turn % len(ready)]

    def stop(self, endpoint: str, fleet: Fleet) -> None:
        self.started.pop((endpoint, fleet.config_name), None)
        for variant in fleet.all_variants():
            key = (endpoint, fleet.config_name, variant.name)
            self.failures.pop(key, None)
            self._turn.pop(key, None)
            for index in self._instances(key):
                self.containers.pop((*key, index)).process.stop()

    def stop_all(self) -> None:
        for container in self.containers.values():
            container.process.stop()
        self.containers.clear()
        self.failures.clear()
        self.started.clear()
        self._turn.clear()
        self.processes, self.cap = True, self.default_cap

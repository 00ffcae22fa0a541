"""Registry hooks end to end: a real ``mlflow server`` (with or without ``--app-name
registry-hooks``), the controller as a subprocess, and the AWS sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from mlflow_plugins.sandbox._launcher import Launched, launch
from tests.serving.conftest import BIN, Server, free_port, ready_session, save_sklearn_model

POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"
SECRET = "s3cret-for-tests"
WAKE_TOKEN = "wake-token-for-tests"
WEBHOOK_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_CACHE_TTL": "0",
    "MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN": WAKE_TOKEN,
}


@dataclass
class Registry:
    """An MLflow server, the hooks database its app plugin writes to, and the port it wakes."""

    server: Server
    db: str
    wake_ports: list[int]
    model_source: tuple[str, str]  # (artifact URI of the logged model, its run id)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def wake_port(self) -> int:
        return self.wake_ports[0]

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.url)

    def new_model(self, versions: int) -> str:
        """A fresh registered model with ``versions`` versions (the same small pipeline)."""
        name = f"m{uuid.uuid4().hex[:8]}"
        client = self.client()
        client.create_registered_model(name)
        for _ in range(versions):
            client.create_model_version(name, self.model_source[0], run_id=self.model_source[1])
        return name

    def transition(self, model: str, version: str, stage: str, archive: bool = True, ajax: bool = True) -> None:
        """A stage transition through the REST path the UI uses."""
        prefix = "ajax-api" if ajax else "api"
        reply = requests.post(
            f"{self.url}/{prefix}/2.0/mlflow/model-versions/transition-stage",
            timeout=30,
            json={
                "name": model,
                "version": version,
                "stage": stage,
                "archive_existing_versions": archive and stage in ("Staging", "Production"),
            },
        )
        assert reply.status_code == 200, reply.text

    def tags(self, model: str, version: str, deployment: str) -> dict[str, str]:
        prefix = f"deploy.{deployment}."
        found = self.client().get_model_version(model, version).tags
        return {k[len(prefix) :]: v for k, v in found.items() if k.startswith(prefix)}


def start_registry(
    root: Path, backend: str, app: bool | str, db: str, env: dict[str, str] | None = None, controllers: int = 1
) -> Registry:
    """``app``: True for registry-hooks, a string for another app name, False for none."""
    port, wake_ports = free_port(), [free_port() for _ in range(controllers)]
    args = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if app:
        args += ["--app-name", app if isinstance(app, str) else "registry-hooks"]
    server = Server(
        args,
        port,
        {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_REGISTRY_HOOKS_DB": db,
            "MLFLOW_REGISTRY_HOOKS_WAKE_URLS": ",".join(f"http://127.0.0.1:{p}" for p in wake_ports),
            **WEBHOOK_ENV,
            **(env or {}),
        },
    )
    server.wait_ready("/health")
    if (env or {}).get("MLFLOW_AUTH_ADMIN_PASSWORD"):
        return Registry(server, db, wake_ports, ("", ""))
    return Registry(server, db, wake_ports, _log_model(server.url, root))


def _log_model(url: str, root: Path) -> tuple[str, str]:
    """Log one model to the server; every registered version points at it."""
    import mlflow

    model_dir = save_sklearn_model(root / "model", seed=3)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    try:
        client = mlflow.MlflowClient(url)
        run = client.create_run(client.create_experiment(f"hooks-{uuid.uuid4().hex[:6]}")).info.run_id
        client.log_artifacts(run, str(model_dir), "model")
        client.set_terminated(run)
        return client.get_run(run).info.artifact_uri + "/model", run
    finally:
        mlflow.set_tracking_uri(previous)


def fresh_postgres_db() -> str:
    import sqlalchemy as sa

    name = f"hooks_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
    with engine.connect() as db:
        db.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"{POSTGRES}/{name}"


def _sqlite_registry(tmp_path_factory, folder: str, app: bool):
    root = tmp_path_factory.mktemp(folder)
    reg = start_registry(root, f"sqlite:///{root / 'mlflow.db'}", app=app, db=f"sqlite:///{root / 'hooks.db'}")
    yield reg
    reg.server.stop()


# The two registries live for the session (each xdist worker starts its own, once): every test
# registers models of its own (``Registry.new_model``) and judges audit rows it wrote, so modules
# share a server instead of starting one each (about 10 s of CPU and 12 s of setup per start).
@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """``mlflow server --app-name registry-hooks`` on sqlite; the app plugin writes to a sqlite hooks db."""
    yield from _sqlite_registry(tmp_path_factory, "hooks", app=True)


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory):
    """A plain ``mlflow server`` (no app plugin): only webhooks or polling can see its changes."""
    yield from _sqlite_registry(tmp_path_factory, "plain", app=False)


def policy_text(
    deployment: str, model: str, source: str = "stage: Production", on_leave: str = "keep", extra: str = ""
) -> str:
    return (
        f"version: 1\ndeployments:\n  {deployment}:\n    model: {model}\n    {source}\n"
        f"    target: sagemaker:/us-east-1\n    on_leave: {on_leave}\n    max_attempts: 3\n"
        f"    config:\n      execution_role_arn: {EXECUTION_ROLE_ARN}\n{extra}"
    )


class Controller:
    """``mlflow-sagemaker-ops hooks run`` as a process of its own, forked from the sandbox's warm
    launcher (the command line and environment as given, its own session); its output goes to a
    log file."""

    def __init__(
        self,
        policy: Path,
        registry: Registry,
        env: dict[str, str],
        *extra: str,
        port: int | None = None,
        replica: str = "replica-a",
        db: str | None = None,
    ) -> None:
        self.port = port if port is not None else registry.wake_port
        self.args = [
            str(BIN / "mlflow-sagemaker-ops"),
            "hooks",
            "run",
            "--policy",
            str(policy),
            "--db",
            db or registry.db,
            "--tracking-uri",
            registry.url,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--replica-id",
            replica,
            "--retry-base-seconds",
            "0.2",
            *extra,
        ]
        self.env = {**os.environ, **env}
        self.log = policy.with_suffix(f".{replica}.log")
        self.process: Launched | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Controller:
        self.process = launch(self.args[1:], self.env, log=self.log)
        reply = ready_session().get(f"{self.url}/health", timeout=5)
        assert reply.status_code == 200, self.output()
        return self

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def controllers(aws, sandbox, tmp_path):
    """Start controllers for this test; every one is stopped at the end."""
    started: list[Controller] = []
    env = {
        **sandbox.env(),
        "MLFLOW_SAGEMAKER_OPS_WAIT_DELAY": "0.1",
        "MLFLOW_REGISTRY_HOOKS_WEBHOOK_SECRET": SECRET,
        "MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN": WAKE_TOKEN,
    }

    def start(policy: str, registry: Registry, *extra: str, **kwargs: Any) -> Controller:
        path = tmp_path / f"policy-{len(started)}.yaml"
        path.write_text(policy)
        controller = Controller(path, registry, env, *extra, **kwargs)
        started.append(controller)
        return controller.start()

    yield start
    for controller in started:
        controller.stop()


def eventually(
    check: Callable[[], Any],
    timeout: float = 90.0,
    what: str = "the condition",
    explain: Callable[[], str] = lambda: "",
) -> Any:
    """Wait for another process to make ``check()`` truthy; its value. Fails with ``explain()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{explain()}")
        time.sleep(0.1)


def hooks_cli(*args: str) -> str:
    done = subprocess.run(
        [str(BIN / "mlflow-sagemaker-ops"), "hooks", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN": WAKE_TOKEN},  # as an operator beside the controllers
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def sagemaker_calls(sandbox, operations: tuple[str, ...]) -> list[dict[str, Any]]:
    calls = requests.get(f"{sandbox.url}/_sandbox/calls", timeout=10).json()["calls"]
    return [c for c in calls if c["operation"] in operations]

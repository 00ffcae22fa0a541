"""Models to serve, and servers (ours and ``mlflow models serve``) as real subprocesses."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def delivery_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "distance_km": rng.uniform(1, 300, n),
            "stops": rng.integers(1, 10, n).astype("int64"),
            "weather": rng.choice(["clear", "rain", "snow"], n),
        }
    )
    label = (
        (frame.distance_km / 100 + frame.stops / 5 + (frame.weather == "snow") * 1.5 + rng.normal(0, 0.5, n)) > 3
    ).astype(int)
    return frame, label


SKLEARN = ("numpy", "pandas", "scikit-learn", "scipy", "skops")  # what a pipeline saved with skops loads with


def pinned(*packages: str) -> list[str]:
    """``pip_requirements`` for a fixture model: MLflow and ``packages`` at their installed versions.
    Without them MLflow infers the requirements by loading the model in a subprocess (about 3 s of
    CPU per model, over 50 models a run); the models under test (those the project's entry points
    log) keep MLflow's inference."""
    return [f"{name}=={version(name)}" for name in ("mlflow", *packages)]


def save_sklearn_model(path: Path, seed: int = 0) -> Path:
    """A scikit-learn pipeline (scaling, one-hot, logistic regression) with a signature, copied to
    ``path`` from this process's one save per seed."""
    shutil.copytree(_saved_sklearn_model(seed), path)
    return path


@cache
def _saved_sklearn_model(seed: int) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, label = delivery_frame(seed=seed)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["distance_km", "stops"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["weather"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, label)
    root = tempfile.mkdtemp(prefix="sklearn-model-")
    atexit.register(shutil.rmtree, root, True)
    path = Path(root) / f"seed{seed}"
    mlflow.sklearn.save_model(
        pipe,
        str(path),
        signature=infer_signature(frame, pipe.predict(frame)),
        input_example=frame.head(3),
        pip_requirements=pinned(*SKLEARN),
    )
    return path


def model_classes():
    """tests/serving/pyfunc_models.py imported under the top-level name that ``code_paths`` gives
    it in the server, so pickled classes refer to "pyfunc_models", not "tests.serving.pyfunc_models"."""
    import importlib

    sys.path.insert(0, str(HERE))
    try:
        return importlib.import_module("pyfunc_models")
    finally:
        sys.path.remove(str(HERE))


def save_pyfunc_model(path: Path, cls_name: str, *args, signature=None) -> Path:
    import mlflow.pyfunc

    model = getattr(model_classes(), cls_name)(*args)
    mlflow.pyfunc.save_model(
        str(path),
        python_model=model,
        code_paths=[str(HERE / "pyfunc_models.py")],
        signature=signature,
        pip_requirements=pinned("cloudpickle"),
    )
    return path


def save_gated_sklearn_model(path: Path) -> Path:
    """A scikit-learn flavored (so batched) model whose predictions a test can hold: GatedDoubler."""
    import mlflow.sklearn

    mlflow.sklearn.save_model(
        model_classes().GatedDoubler(),
        str(path),
        code_paths=[str(HERE / "pyfunc_models.py")],
        serialization_format="cloudpickle",
        pip_requirements=pinned("cloudpickle", "scikit-learn"),
    )
    return path


@pytest.fixture(scope="session")
def sklearn_model(tmp_path_factory) -> Path:
    return save_sklearn_model(tmp_path_factory.mktemp("models") / "delivery")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready_session(statuses: tuple[int, ...] = (502, 503)) -> requests.Session:
    """A session that retries refused connections and the given statuses with backoff."""
    session = requests.Session()
    retry = Retry(
        total=80,
        connect=80,
        status=80,
        backoff_factor=0.05,
        backoff_max=0.5,
        status_forcelist=statuses,
        allowed_methods=None,
        raise_on_status=False,
    )
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


class Server:
    """A server subprocess on a port; ``stop()`` terminates it and reaps it."""

    def __init__(self, args: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def wait_ready(self, path: str = "/ping", expect: int = 200) -> requests.Response:
        self._wait_announced()
        reply = ready_session().get(self.url + path, timeout=5)
        if reply.status_code != expect:
            self.stop()
            raise AssertionError(f"{self.url}{path} answered {reply.status_code}: {reply.text}\n{self.output()}")
        return reply

    def _wait_announced(self) -> None:
        """Read the output until the server says it listens; a server that dies fails at once."""
        if getattr(self, "_seen", None) is not None:
            return
        self._seen: list[str] = []
        for line in self.process.stdout:
            self._seen.append(line)
            if line.startswith("Serving on http") or "Uvicorn running on" in line:
                # Keep draining, so a chatty server never blocks on a full pipe.
                self._drainer = threading.Thread(target=self._drain, daemon=True)
                self._drainer.start()
                return
        self.process.wait(timeout=30)
        raise AssertionError(f"the server exited with {self.process.returncode}:\n{''.join(self._seen)}")

    def _drain(self) -> None:
        for line in self.process.stdout:
            self._seen.append(line)

    def output(self) -> str:
        """Everything the server printed (complete once it has exited)."""
        if getattr(self, "_seen", None) is None:
            return self.process.stdout.read() if self.process.poll() is not None else "(running)"
        drainer = getattr(self, "_drainer", None)
        if drainer is not None and self.process.poll() is not None:
            drainer.join(timeout=10)  # the pipe closes when the server exits
        return "".join(self._seen)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)


def start_runtime(*args: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    command = [str(BIN / "mlflow-sagemaker-ops"), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    return Server(command, port, env)


def start_mlflow_serve(model: Path, workers: int = 1) -> Server:
    port = free_port()
    command = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--env-manager",
        "local",
        "--workers",
        str(workers),
    ]
    return Server(command, port, {"PATH": f"{BIN}:{os.environ['PATH']}"})


@pytest.fixture(scope="session")
def runtime(sklearn_model):
    server = start_runtime("--model-dir", str(sklearn_model), "--workers", "1")
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server(sklearn_model):
    server = start_mlflow_serve(sklearn_model)
    server.wait_ready()
    yield server
    server.stop()


def served_by(pattern: str, text: str) -> int:
    return int(re.search(pattern, text).group(1))


def basic_auth_env(root: Path, password: str) -> dict[str, str]:
    """Environment for ``mlflow server --app-name basic-auth`` (or an app on top of it) whose user
    store is its own, under ``root``: MLflow's default is ``basic_auth.db`` in the working
    directory, which every such server would share (with the first one's admin password)."""
    config = root / "basic_auth.ini"
    config.write_text(
        f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root / 'basic_auth.db'}\n"
        "admin_username = admin\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": f"secret-{root.name}",
    }

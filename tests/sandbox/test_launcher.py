"""The sandbox's warm launcher runs a container's command line as the container would: its
environment, its own session, its output, its exit code (``mlflow_plugins/sandbox/_launcher.py``)."""

from __future__ import annotations

import json
import os
import threading

from mlflow_plugins.sandbox._launcher import launch
from tests.serving.conftest import delivery_frame, free_port, ready_session, save_sklearn_model


def _collect(process) -> tuple[list[str], threading.Event]:
    lines: list[str] = []
    announced = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line.rstrip())
            if line.startswith("Serving on"):
                announced.set()
        announced.set()  # the output ended

    threading.Thread(target=read, daemon=True).start()
    return lines, announced


def test_a_launched_runtime_takes_the_container_environment_serves_and_stops_on_sigterm(tmp_path):
    model = save_sklearn_model(tmp_path / "model")
    port = free_port()
    # No --port: the runtime takes SAGEMAKER_BIND_TO_PORT from the environment it was given.
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port)}
    process = launch(["serve", "--model-dir", str(model), "--host", "127.0.0.1", "--workers", "1"], env)
    lines, announced = _collect(process)
    try:
        assert announced.wait(120), lines
        assert f"Serving on http://127.0.0.1:{port}" in lines, lines
        assert os.getsid(process.pid) == process.pid  # a session of its own, as start_new_session
        rows, _ = delivery_frame(n=3, seed=1)
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        session = ready_session()  # retries the 503s of /ping while the model loads
        assert session.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200
        reply = session.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["predictions"]) == 3
        assert process.poll() is None
    finally:
        process.terminate()
    assert process.wait(timeout=30) == 0


def test_a_runtime_that_cannot_start_exits_non_zero_and_says_why(tmp_path):
    process = launch(["serve", "--workers", "zero"], dict(os.environ))
    lines, ended = _collect(process)
    assert process.wait(timeout=60) == 2  # click's usage error
    assert ended.wait(10)
    assert any("zero" in line for line in lines), lines

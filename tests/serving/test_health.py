"""Health checks and management routes never wait behind predictions.

A Gate model holds each prediction until the test opens its gate, so "every worker is busy
predicting" is a fact the test observes (one started-file per worker), not a timing guess. While
every prediction is held, /ping must answer; that none of the predictions has returned yet shows
the pings were answered *during* them. No wall-clock time is asserted.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.processes import children, eventually
from tests.serving.conftest import save_pyfunc_model, save_sklearn_model, start_runtime

PING_TIMEOUT = 10  # generous: a ping stuck behind a prediction waits until the gate opens


@pytest.fixture(scope="module")
def gate_model(tmp_path_factory) -> Path:
    return save_pyfunc_model(tmp_path_factory.mktemp("gate") / "gate", "Gate")


def predict(url: str, gate: Path) -> requests.Response:
    body = json.dumps({"dataframe_records": [{"gate": str(gate)}]})
    return requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=120)


def busy_workers(gate: Path) -> set[str]:
    return {p.name.split("-")[1] for p in gate.glob("started-*")}


def hold_every_worker(pool: ThreadPoolExecutor, url: str, gate: Path, workers: int) -> list[Future]:
    """Send predictions on fresh connections until every worker holds one (bounded)."""
    pending: list[Future] = []
    for _ in range(16 * workers):
        before = len(busy_workers(gate))
        pending.append(pool.submit(predict, url, gate))
        eventually(lambda: len(busy_workers(gate)) > before, seconds=2)  # a busy worker queues it instead
        if len(busy_workers(gate)) == workers:
            return pending
    raise AssertionError(f"only workers {busy_workers(gate)} started predicting; expected {workers}")


@pytest.mark.parametrize("workers", [1, 2])
def test_ping_answers_while_every_worker_predicts(gate_model, tmp_path, workers):
    server = start_runtime("--model-dir", str(gate_model), "--workers", str(workers))
    gate = tmp_path / "gate"
    gate.mkdir()
    try:
        server.wait_ready()
        assert len(children(server.process.pid)) == (workers if workers > 1 else 0)
        with ThreadPoolExecutor(16 * workers + 4) as pool:
            held = hold_every_worker(pool, server.url + "/invocations", gate, workers)
            pings = [requests.get(server.url + "/ping", timeout=PING_TIMEOUT) for _ in range(20)]
            with requests.Session() as kept_alive:
                pings += [kept_alive.get(server.url + "/ping", timeout=PING_TIMEOUT) for _ in range(20)]
            still_running = [not future.done() for future in held]
            (gate / "release").touch()
            replies = [future.result() for future in held]
        assert [p.status_code for p in pings] == [200] * 40
        assert all(still_running), "a prediction returned before the gate opened"
        assert {r.status_code for r in replies} == {200}
    finally:
        (gate / "release").touch()
        server.stop()


def test_mme_management_routes_answer_while_a_model_predicts(gate_model, tmp_path):
    other = save_sklearn_model(tmp_path / "other")
    server = start_runtime("--multi-model", "--workers", "1")
    gate = tmp_path / "gate"
    gate.mkdir()
    try:
        server.wait_ready()
        assert (
            requests.post(
                server.url + "/models", json={"model_name": "g", "url": str(gate_model)}, timeout=60
            ).status_code
            == 200
        )
        with ThreadPoolExecutor(2) as pool:
            held = pool.submit(predict, server.url + "/models/g/invoke", gate)
            assert eventually(lambda: busy_workers(gate), seconds=30)
            answers = [
                requests.get(server.url + "/ping", timeout=PING_TIMEOUT).status_code,
                requests.get(server.url + "/models", timeout=PING_TIMEOUT).status_code,
                requests.get(server.url + "/models/g", timeout=PING_TIMEOUT).status_code,
                requests.post(
                    server.url + "/models", json={"model_name": "o", "url": str(other)}, timeout=PING_TIMEOUT * 6
                ).status_code,
                requests.delete(server.url + "/models/o", timeout=PING_TIMEOUT).status_code,
            ]
            still_running = not held.done()
            (gate / "release").touch()
            assert held.result().status_code == 200
        assert answers == [200] * 5
        assert still_running, "the prediction returned before the gate opened"
    finally:
        (gate / "release").touch()
        server.stop()

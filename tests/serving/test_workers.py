"""Several workers: connections spread across them, and nothing is left running after a stop."""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.processes import children, eventually, exits_within
from tests.serving.conftest import start_runtime

ONE = json.dumps({"dataframe_records": [{"distance_km": 12.5, "stops": 3, "weather": "rain"}]})


def test_two_workers_serve_and_stop_together(sklearn_model):
    server = start_runtime("--model-dir", str(sklearn_model), "--workers", "2")
    try:
        server.wait_ready()
        workers = children(server.process.pid)
        assert len(workers) == 2

        def call(_):
            with requests.Session() as session:
                return [
                    session.post(
                        server.url + "/invocations", data=ONE, headers={"Content-Type": "application/json"}, timeout=30
                    ).status_code
                    for _ in range(10)
                ]

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for batch in pool.map(call, range(8)) for s in batch]
        assert statuses == [200] * 80
    finally:
        server.stop()
    assert all(exits_within(pid, 10) for pid in workers)


def test_workers_die_with_a_killed_parent(sklearn_model):
    server = start_runtime("--model-dir", str(sklearn_model), "--workers", "2")
    server.wait_ready()
    workers = children(server.process.pid)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    for pid in workers:
        assert exits_within(pid, 10), f"worker {pid} outlived its parent"


def test_a_crashed_worker_is_replaced(sklearn_model):
    server = start_runtime("--model-dir", str(sklearn_model), "--workers", "2")
    try:
        server.wait_ready()
        first = children(server.process.pid)
        os.kill(first[0], signal.SIGKILL)

        def replaced() -> bool:
            now = children(server.process.pid)
            return len(now) == 2 and first[0] not in now

        assert eventually(replaced)
        server.wait_ready()
    finally:
        server.stop()


def test_workers_start_only_once_the_model_is_loaded(tmp_path):
    """With several workers, /ping says 503 while the model loads, and once it says 200 every
    worker answers (the parent loads the model once and forks loaded workers)."""
    from tests.serving.conftest import ready_session, save_pyfunc_model

    server = start_runtime("--model-dir", str(save_pyfunc_model(tmp_path / "slow", "SlowToLoad")), "--workers", "2")
    try:
        server._wait_announced()
        assert ready_session(statuses=()).get(server.url + "/ping", timeout=5).status_code == 503
        server.wait_ready()

        def call(_):
            with requests.Session() as session:
                return [
                    session.post(
                        server.url + "/invocations",
                        data=json.dumps({"inputs": [[1], [2]]}),
                        headers={"Content-Type": "application/json"},
                        timeout=30,
                    ).status_code
                    for _ in range(5)
                ]

        with ThreadPoolExecutor(8) as pool:
            assert [s for batch in pool.map(call, range(8)) for s in batch] == [200] * 40
        assert len(children(server.process.pid)) == 2
    finally:
        server.stop()

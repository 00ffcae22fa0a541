"""Multi-model servers with several workers agree: a load, unload or reload is seen by every worker
before the call returns. Every request here goes on a fresh connection, so the kernel spreads
them over the workers (SO_REUSEPORT); each worker's /ping names it, so the test can see them all."""

from __future__ import annotations

import json

import pytest
import requests

from tests.processes import children, eventually
from tests.serving.conftest import save_pyfunc_model, start_runtime

ROW = json.dumps({"dataframe_records": [{"x": 1}]})


@pytest.fixture(scope="module")
def markers(tmp_path_factory):
    root = tmp_path_factory.mktemp("markers")
    return {tag: str(save_pyfunc_model(root / tag, "Marker", tag)) for tag in ("old", "new")}


def invoke(server, name: str) -> requests.Response:
    return requests.post(
        f"{server.url}/models/{name}/invoke",
        data=ROW,
        headers={"Content-Type": "application/json", "Connection": "close"},
        timeout=60,
    )


def ping_every_worker(server, workers: int) -> dict[int, dict]:
    """One /ping answer from each worker (fresh connections until every worker answered)."""
    seen: dict[int, dict] = {}
    for _ in range(100 * workers):
        answer = requests.get(server.url + "/ping", headers={"Connection": "close"}, timeout=10).json()
        seen[answer["worker"]] = answer
        if len(seen) == workers:
            return seen
    raise AssertionError(f"/ping reached workers {sorted(seen)} only; expected {workers}")


@pytest.mark.parametrize("workers", [2, 4])
def test_unload_and_reload_are_seen_by_every_worker(markers, workers):
    server = start_runtime("--multi-model", "--workers", str(workers))
    try:
        server.wait_ready()
        assert eventually(lambda: len(children(server.process.pid)) == workers, seconds=60)
        ping_every_worker(server, workers)  # every worker serves
        load = requests.post(server.url + "/models", json={"model_name": "w", "url": markers["old"]}, timeout=60)
        assert load.status_code == 200, load.text
        answers = [invoke(server, "w") for _ in range(8 * workers)]
        assert {(a.status_code, a.json()["predictions"][0]) for a in answers} == {(200, "old")}
        assert sum(p["resident"] for p in ping_every_worker(server, workers).values()) >= 2

        assert requests.delete(server.url + "/models/w", headers={"Connection": "close"}, timeout=60).status_code == 200
        resident = {pid: p["resident"] for pid, p in ping_every_worker(server, workers).items()}
        assert resident == dict.fromkeys(resident, 0), f"a worker still holds the unloaded model: {resident}"
        assert {invoke(server, "w").status_code for _ in range(4 * workers)} == {404}

        reload = requests.post(
            server.url + "/models",
            json={"model_name": "w", "url": markers["new"]},
            headers={"Connection": "close"},
            timeout=60,
        )
        assert reload.status_code == 200, reload.text
        answers = [invoke(server, "w") for _ in range(16 * workers)]
        stale = [a.json() for a in answers if a.status_code != 200 or a.json()["predictions"] != ["new"]]
        assert stale == [], f"{len(stale)} of {len(answers)} answers were not the reloaded model's"
    finally:
        server.stop()


def test_a_reload_under_the_same_url_length_is_not_missed(markers, tmp_path):
    """Unload and reload in quick succession, from URLs of equal length: the registry file can keep
    its size and timestamp; workers must still see the new load."""
    import shutil

    twin = tmp_path / "a"
    shutil.copytree(markers["old"], twin / "old")
    shutil.copytree(markers["new"], twin / "new")
    server = start_runtime("--multi-model", "--workers", "2")
    try:
        server.wait_ready()
        for round_ in range(6):
            tag = ("old", "new")[round_ % 2]
            url = str(twin / tag)
            requests.delete(server.url + "/models/w", headers={"Connection": "close"}, timeout=60)
            loaded = requests.post(
                server.url + "/models",
                json={"model_name": "w", "url": url},
                headers={"Connection": "close"},
                timeout=60,
            )
            assert loaded.status_code == 200, loaded.text
            answers = {tuple(invoke(server, "w").json()["predictions"]) for _ in range(8)}
            assert answers == {(tag,)}, f"round {round_}: {answers}"
    finally:
        server.stop()

"""The multi-model contract: load, list, get, invoke, unload, eviction, conflicts, 507."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.serving.conftest import save_sklearn_model, start_runtime

ONE = json.dumps({"dataframe_records": [{"distance_km": 250.0, "stops": 9, "weather": "snow"}]})


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mme")
    return {f"m{i}": str(save_sklearn_model(root / f"m{i}", seed=i)) for i in range(3)}


@pytest.fixture
def mme(request):
    args = getattr(request, "param", ())
    server = start_runtime("--multi-model", "--workers", "1", *args)
    server.wait_ready()
    yield server
    server.stop()


def load(server, name, url):
    return requests.post(server.url + "/models", json={"model_name": name, "url": url}, timeout=60)


def invoke(server, name):
    return requests.post(
        f"{server.url}/models/{name}/invoke",
        data=ONE,
        headers={"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Model": f"{name}.tar.gz"},
        timeout=60,
    )


def test_load_list_get_invoke_unload(mme, model_dirs):
    assert load(mme, "m0", model_dirs["m0"]).status_code == 200
    assert load(mme, "m1", model_dirs["m1"]).status_code == 200
    listed = requests.get(mme.url + "/models", timeout=10).json()["models"]
    assert [(m["modelName"], m["modelUrl"]) for m in listed] == [("m0", model_dirs["m0"]), ("m1", model_dirs["m1"])]
    assert requests.get(mme.url + "/models/m1", timeout=10).json()["modelUrl"] == model_dirs["m1"]
    reply = invoke(mme, "m0")
    assert reply.status_code == 200 and reply.json()["predictions"] in ([0], [1])

    assert requests.delete(mme.url + "/models/m0", timeout=10).status_code == 200
    for call in (
        lambda: invoke(mme, "m0"),
        lambda: requests.get(mme.url + "/models/m0", timeout=10),
        lambda: requests.delete(mme.url + "/models/m0", timeout=10),
    ):
        reply = call()
        assert reply.status_code == 404 and "Loaded models: m1" in reply.json()["message"]


def test_loading_twice_is_409_and_bad_loads_are_refused(mme, model_dirs, tmp_path):
    assert load(mme, "m0", model_dirs["m0"]).status_code == 200
    again = load(mme, "m0", model_dirs["m1"])
    assert again.status_code == 409 and model_dirs["m0"] in again.json()["message"]
    assert load(mme, "x", str(tmp_path / "nowhere")).status_code == 400
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    broken = load(mme, "broken", str(tmp_path))
    assert broken.status_code == 500 and "failed to load" in broken.json()["message"]
    assert [m["modelName"] for m in requests.get(mme.url + "/models", timeout=10).json()["models"]] == ["m0"]
    assert requests.post(mme.url + "/models", data="{}", timeout=10).status_code == 400


@pytest.mark.parametrize("mme", [("--max-models", "2")], indirect=True)
def test_least_recently_used_model_is_evicted_and_reloaded_on_demand(mme, model_dirs):
    for name in ("m0", "m1", "m2"):
        assert load(mme, name, model_dirs[name]).status_code == 200
    resident = {m["modelName"]: m["resident"] for m in requests.get(mme.url + "/models", timeout=10).json()["models"]}
    assert resident == {"m0": False, "m1": True, "m2": True}
    assert invoke(mme, "m0").status_code == 200  # loaded again, evicting m1
    resident = {m["modelName"]: m["resident"] for m in requests.get(mme.url + "/models", timeout=10).json()["models"]}
    assert resident == {"m0": True, "m1": False, "m2": True}


@pytest.mark.parametrize("mme", [("--memory-budget-mb", "0.01")], indirect=True)
def test_a_model_larger_than_the_budget_is_507(mme, model_dirs):
    reply = load(mme, "m0", model_dirs["m0"])
    assert reply.status_code == 507
    assert "memory budget is 0.0 MB" in reply.json()["message"] or "budget" in reply.json()["message"]
    assert requests.get(mme.url + "/models", timeout=10).json()["models"] == []


def test_concurrent_loads_across_workers_load_once(model_dirs):
    server = start_runtime("--multi-model", "--workers", "2")
    try:
        server.wait_ready()

        def attempt(_):
            with requests.Session() as session:
                return session.post(
                    server.url + "/models", json={"model_name": "m0", "url": model_dirs["m0"]}, timeout=60
                ).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(attempt, range(8)))
        assert statuses == [200] + [409] * 7
        with ThreadPoolExecutor(8) as pool:  # every worker can invoke it
            replies = list(
                pool.map(
                    lambda _: (
                        requests.post(
                            server.url + "/models/m0/invoke",
                            data=ONE,
                            headers={"Content-Type": "application/json"},
                            timeout=60,
                        ).status_code
                    ),
                    range(16),
                )
            )
        assert replies == [200] * 16
    finally:
        server.stop()

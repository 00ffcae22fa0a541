"""The SageMaker container contract over real HTTP: routes, formats, status codes, readiness."""

from __future__ import annotations

import http.client
import json

import pytest
import requests

from tests.serving.conftest import save_pyfunc_model, start_runtime

ONE = {"dataframe_records": [{"distance_km": 12.5, "stops": 3, "weather": "rain"}]}


def invoke(server, body, content_type="application/json", **headers):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(
        server.url + "/invocations", data=data, headers={"Content-Type": content_type, **headers}, timeout=30
    )


def test_ping_and_invocations(runtime):
    assert requests.get(runtime.url + "/ping", timeout=5).status_code == 200
    reply = invoke(runtime, ONE)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/json"
    assert reply.json()["predictions"] in ([0], [1])


@pytest.mark.parametrize(
    "accept, expected_type, parse",
    [
        ("text/csv", "text/csv", lambda text: [int(line) for line in text.splitlines()]),
        (
            "application/jsonlines",
            "application/jsonlines",
            lambda text: [json.loads(line) for line in text.splitlines()],
        ),
        ("*/*", "application/json", lambda text: json.loads(text)["predictions"]),
    ],
)
def test_output_formats_follow_accept(runtime, accept, expected_type, parse):
    body = {"dataframe_records": ONE["dataframe_records"] * 3}
    reply = invoke(runtime, body, Accept=accept)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == expected_type
    assert parse(reply.text) == invoke(runtime, body).json()["predictions"]


@pytest.mark.parametrize(
    "body, content_type, headers, status, words",
    [
        ("{not json", "application/json", {}, 400, "valid JSON"),
        ({"dataframe_records": [{"distance_km": 1.0, "weather": "x"}]}, "application/json", {}, 400, "stops"),
        (
            {"dataframe_records": [{"distance_km": "far", "stops": 1, "weather": "x"}]},
            "application/json",
            {},
            400,
            "distance_km",
        ),
        ({"rows": []}, "application/json", {}, 400, "dataframe_split"),
        ("<xml/>", "application/xml", {}, 415, "application/xml"),
        ("1,2,x", "text/csv; charset=latin-1", {}, 415, "UTF-8"),
        (ONE, "application/json", {"Accept": "image/png"}, 406, "image/png"),
        ('{"a": 1}\n[1, 2, "x"]\n', "application/jsonlines", {}, 400, "all objects"),
    ],
)
def test_bad_requests_get_their_status_and_name_the_problem(runtime, body, content_type, headers, status, words):
    reply = invoke(runtime, body, content_type, **headers)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["message"]


def test_over_6_mb_is_refused_with_413_before_it_is_read(runtime):
    row = json.dumps({"distance_km": 1.0, "stops": 1, "weather": "clear"})
    body = '{"dataframe_records": [' + ",".join([row] * 130_000) + "]}"
    assert len(body) > 6 * 2**20
    reply = invoke(runtime, body)
    assert reply.status_code == 413
    assert "6 MB" in reply.json()["message"]
    assert requests.get(runtime.url + "/ping", timeout=5).status_code == 200


def test_unknown_routes_are_404_and_list_the_routes(runtime):
    reply = requests.get(runtime.url + "/models", timeout=5)
    assert reply.status_code == 404 and "POST /invocations" in reply.json()["message"]


def test_keep_alive_and_pipelined_requests_on_one_connection(runtime):
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    body = json.dumps(ONE)
    for _ in range(5):
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        reply = connection.getresponse()
        assert reply.status == 200 and json.loads(reply.read())["predictions"]
    connection.close()


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    return {name: save_pyfunc_model(root / name, name) for name in ("Failing", "Sleepy", "SlowToLoad", "Echo")}


def test_a_model_failure_is_a_500_that_leaks_nothing(odd_models):
    server = start_runtime("--model-dir", str(odd_models["Failing"]), "--workers", "1")
    try:
        server.wait_ready()
        reply = invoke(server, {"inputs": [[1]]})
        assert reply.status_code == 500
        message = reply.json()["message"]
        assert "RuntimeError" in message
        assert "Traceback" not in reply.text and "hunter2" not in reply.text
    finally:
        server.stop()
    assert "hunter2" in server.output()  # the details are in the server log


def test_a_slow_prediction_times_out_with_504(odd_models):
    server = start_runtime(
        "--model-dir", str(odd_models["Sleepy"]), "--workers", "1", env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "0.5"}
    )
    try:
        server.wait_ready()
        assert invoke(server, {"dataframe_records": [{"seconds": 0.01}]}).status_code == 200
        reply = invoke(server, {"dataframe_records": [{"seconds": 3}]})
        assert reply.status_code == 504 and "SAGEMAKER_MODEL_SERVER_TIMEOUT" in reply.json()["message"]
        assert invoke(server, {"dataframe_records": [{"seconds": 0.01}]}).status_code == 200
    finally:
        server.stop()


def test_ping_is_503_while_loading_then_200(odd_models):
    server = start_runtime("--model-dir", str(odd_models["SlowToLoad"]), "--workers", "1")
    try:
        server.wait_ready(path="/ping", expect=200)  # retries through the 503s
        early = start_runtime("--model-dir", str(odd_models["SlowToLoad"]), "--workers", "1")
        try:
            from tests.serving.conftest import ready_session

            first = ready_session(statuses=()).get(early.url + "/ping", timeout=5)
            assert first.status_code == 503 and "still loading" in first.json()["message"]
            assert invoke(early, {"inputs": [[1]]}).status_code == 503
        finally:
            early.stop()
    finally:
        server.stop()


def test_a_model_that_cannot_load_answers_ping_with_500_and_the_reason(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    server = start_runtime("--model-dir", str(tmp_path), "--workers", "1")
    try:
        reply = server.wait_ready(expect=500)
        assert "failed to load" in reply.json()["message"]
    finally:
        server.stop()


def test_params_reach_the_model(odd_models):
    server = start_runtime("--model-dir", str(odd_models["Echo"]), "--workers", "1")
    try:
        server.wait_ready()
        reply = invoke(server, {"inputs": [[1], [2]], "params": {"mode": "fast"}})
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"][0]["rows"] == 2
    finally:
        server.stop()


@pytest.mark.parametrize(
    "variable, value, words",
    [
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "many", "SAGEMAKER_MODEL_SERVER_WORKERS='many' is not valid"),
        ("SAGEMAKER_MULTI_MODEL", "maybe", "Allowed: true, false"),
    ],
)
def test_bad_environment_fails_at_start_with_the_variable_named(sklearn_model, variable, value, words):
    server = start_runtime("--model-dir", str(sklearn_model), env={variable: value})
    server.process.wait(timeout=60)
    assert server.process.returncode != 0
    assert words in server.output()

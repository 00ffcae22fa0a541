"""Queued requests are predicted together only where that cannot change any answer."""

from __future__ import annotations

import http.client
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import mlflow.pyfunc
import requests

from tests.processes import eventually
from tests.serving.conftest import delivery_frame, save_gated_sklearn_model, save_pyfunc_model, start_runtime

ROWS, _ = delivery_frame(n=64, seed=21)


def body(index: int) -> str:
    row = ROWS.iloc[[index]]
    return json.dumps({"dataframe_split": json.loads(row.to_json(orient="split", index=False))})


def hammer(server, bodies: list[str], threads: int = 16, rounds: int = 6) -> list[requests.Response]:
    def worker(start: int) -> list[requests.Response]:
        with requests.Session() as session:
            return [
                session.post(
                    server.url + "/invocations",
                    data=bodies[(start + i) % len(bodies)],
                    headers={"Content-Type": "application/json"},
                    timeout=60,
                )
                for i in range(rounds * len(bodies) // threads)
            ]

    with ThreadPoolExecutor(threads) as pool:
        return [reply for batch in pool.map(worker, range(0, len(bodies), len(bodies) // threads)) for reply in batch]


def test_batched_predictions_equal_one_by_one_predictions(runtime, sklearn_model):
    expected = mlflow.pyfunc.load_model(str(sklearn_model)).predict(ROWS).tolist()
    bodies = [body(i) for i in range(len(ROWS))]
    replies = hammer(runtime, bodies)
    by_body = {}
    for reply in replies:
        assert reply.status_code == 200, reply.text
        sent = reply.request.body if isinstance(reply.request.body, str) else reply.request.body.decode()
        by_body.setdefault(sent, set()).add(tuple(reply.json()["predictions"]))
    for index, text in enumerate(bodies):
        assert by_body[text] == {(expected[index],)}
    assert max(int(r.headers["X-Batch-Size"]) for r in replies) > 1


def test_a_bad_request_in_a_batch_fails_alone(runtime):
    good, bad = body(0), json.dumps({"dataframe_records": [{"distance_km": 1.0, "weather": "rain"}]})
    replies = hammer(runtime, [good, bad] * 8)
    for reply in replies:
        sent = reply.request.body if isinstance(reply.request.body, str) else reply.request.body.decode()
        if sent == bad:
            assert reply.status_code == 400 and "stops" in reply.json()["message"]
        else:
            assert reply.status_code == 200


def test_a_model_that_is_not_row_wise_is_never_batched(tmp_path):
    server = start_runtime("--model-dir", str(save_pyfunc_model(tmp_path / "echo", "Echo")), "--workers", "1")
    try:
        server.wait_ready()
        replies = hammer(server, [json.dumps({"inputs": [[i]]}) for i in range(32)])
        assert {r.status_code for r in replies} == {200}
        assert {r.headers["X-Batch-Size"] for r in replies} == {"1"}
        assert {r.json()["predictions"][0]["rows"] for r in replies} == {1}
    finally:
        server.stop()


def _raw_post(port: int, body: str) -> socket.socket:
    """A request on a fresh connection, sent in full; the answer is read later."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=120)
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    connection.sendall(head.encode() + body.encode())
    return connection


def _answer(connection: socket.socket) -> tuple[int, dict, dict]:
    with connection:
        reply = http.client.HTTPResponse(connection)
        reply.begin()
        return reply.status, dict(reply.getheaders()), json.loads(reply.read())


def test_requests_queued_on_fresh_connections_are_batched(tmp_path):
    """While a prediction is held, requests arrive on fresh connections; once it is released,
    everything that queued meanwhile is predicted together, and each gets its own answer."""
    server = start_runtime("--model-dir", str(save_gated_sklearn_model(tmp_path / "doubler")), "--workers", "1")
    gate = tmp_path / "gate"
    gate.mkdir()
    try:
        server.wait_ready()
        held = _raw_post(server.port, json.dumps({"dataframe_records": [{"x": 0.5, "gate": str(gate)}]}))
        assert eventually(lambda: any(gate.glob("started-*")), seconds=30)
        queued = [
            _raw_post(server.port, json.dumps({"dataframe_records": [{"x": float(i), "gate": ""}]})) for i in range(8)
        ]
        # /ping answers on a fresh connection that came after them: the loop has read them all
        assert requests.get(server.url + "/ping", timeout=10).status_code == 200
        (gate / "release").touch()
        status, _, first = _answer(held)
        answers = [_answer(connection) for connection in queued]
    finally:
        (gate / "release").touch()
        server.stop()
    assert (status, first["predictions"]) == (200, [1.0])
    assert [(s, body["predictions"]) for s, _, body in answers] == [(200, [2.0 * i]) for i in range(8)]
    assert max(int(headers["X-Batch-Size"]) for _, headers, _ in answers) == 8

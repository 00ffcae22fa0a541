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


def _mlflow_answer(model, body: str) -> tuple[int, object]:
    """What MLflow's own scoring server answers for ``body`` (its ``invocations``, in process)."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    try:
        reply = scoring_server.invocations(body, "application/json", model, model.metadata.get_input_schema())
    except MlflowException as error:
        return error.get_http_status_code(), None
    return reply.status, json.loads(reply.response)["predictions"] if reply.status == 200 else None


def _mixed_bodies() -> list[str]:
    """Bodies that batch together or apart: value types that pandas reads differently (int and
    float, numbers as text, null, bool), both row forms, several rows, and bodies MLflow refuses."""
    split = [
        [12.5, 3, "rain"],
        [120, 2, "snow"],  # an int where the signature has a double
        ["42.5", 4, "clear"],  # a number as text
        [80.0, "3", "rain"],  # a long as text: casts
        [80.0, "many", "rain"],  # ... and one that does not: same types, the combined cast fails
        [30.0, None, "snow"],  # null in a long column
        [200.0, True, "clear"],  # a bool in a long column
        [55.5, 1, 7],  # a number in a string column
    ]
    bodies = [
        json.dumps({"dataframe_split": {"columns": ["distance_km", "stops", "weather"], "data": [row]}})
        for row in split
    ]
    bodies.append(json.dumps({"dataframe_split": {"columns": ["distance_km", "stops", "weather"], "data": split[:3]}}))
    bodies.append(json.dumps({"dataframe_records": [{"weather": "rain", "stops": 5, "distance_km": 99.0}]}))
    bodies.append(json.dumps({"dataframe_records": [{"distance_km": 9.0, "stops": 5, "weather": "snow"}] * 3}))
    bodies.append(json.dumps({"dataframe_records": [{"distance_km": 9.0, "weather": "snow"}]}))  # missing column
    bodies.append(
        json.dumps(
            {
                "dataframe_split": {
                    "columns": ["distance_km", "stops", "weather"],
                    "data": [[1.0, 2, "rain"]],
                    "index": [7],
                }
            }
        )
    )
    bodies.append(
        json.dumps({"dataframe_split": {"columns": ["distance_km", "stops", "weather"], "data": [[1.0, 2]]}})
    )  # a short row
    return bodies


def test_requests_decoded_together_answer_as_mlflow_answers_each_alone(runtime, sklearn_model):
    """Each body, hammered in batches with every other, gets MLflow's own answer for it alone:
    the same status, and for a 200 the same predictions."""
    model = mlflow.pyfunc.load_model(str(sklearn_model))
    bodies = _mixed_bodies()
    expected = {body: _mlflow_answer(model, body) for body in bodies}
    assert {status for status, _ in expected.values()} == {200, 400}  # the cases do differ
    replies = hammer(runtime, bodies * 4)
    for reply in replies:
        sent = reply.request.body if isinstance(reply.request.body, str) else reply.request.body.decode()
        status, predictions = expected[sent]
        assert reply.status_code == status, (sent, reply.text)
        if status == 200:
            assert reply.json()["predictions"] == predictions, sent
    assert max(int(r.headers.get("X-Batch-Size", "1")) for r in replies) > 1


def test_only_plain_row_bodies_are_kept_as_rows_and_the_rest_go_to_mlflows_parser():
    from mlflow_plugins.serving import codec

    columns = ["a", "b"]
    kept = codec.rows(
        json.dumps({"dataframe_split": {"columns": columns, "data": [[1.0, 2]]}}).encode(), "application/json"
    )
    assert kept is not None and (kept.orient, kept.columns, len(kept.data)) == ("split", ("a", "b"), 1)
    as_ints = codec.rows(json.dumps({"dataframe_split": {"columns": columns, "data": [[1, 2]]}}).encode(), "")
    assert as_ints is not None and as_ints.key != kept.key  # pandas reads ints and floats apart
    records = codec.rows(
        json.dumps({"dataframe_records": [{"a": 1.0, "b": 2}]}).encode(), "application/json; charset=utf-8"
    )
    assert records is not None and records.orient == "records"
    for body, content_type in [
        ({"dataframe_split": {"columns": columns, "data": [[1.0, 2]]}, "params": {"k": 1}}, "application/json"),
        ({"dataframe_split": {"columns": columns, "data": [[1.0, 2]], "index": [3]}}, "application/json"),
        ({"dataframe_split": {"data": [[1.0, 2]]}}, "application/json"),
        ({"dataframe_split": {"columns": columns, "data": [[1.0]]}}, "application/json"),
        ({"dataframe_split": {"columns": columns, "data": []}}, "application/json"),
        ({"dataframe_records": [{"a": 1.0, "b": 2}, {"b": 2, "a": 1.0}]}, "application/json"),
        ({"inputs": [[1.0, 2]]}, "application/json"),
        ({"dataframe_split": {"columns": columns, "data": [[1.0, 2]]}}, "application/json; charset=latin-1"),
        ({"dataframe_split": {"columns": columns, "data": [[1.0, 2]]}}, "text/csv"),
    ]:
        assert codec.rows(json.dumps(body).encode(), content_type) is None, (body, content_type)
    assert codec.rows(b"{not json", "application/json") is None


def test_a_frame_built_from_rows_equals_the_frame_mlflows_parser_builds(sklearn_model):
    """Frame for frame, dtypes included (the cast is skipped only where it would change nothing),
    or the same refusal."""
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    from mlflow_plugins.errors import BadRequest
    from mlflow_plugins.serving import codec

    model = mlflow.pyfunc.load_model(str(sklearn_model))
    schema = model.metadata.get_input_schema()
    kept = 0
    for text in _mixed_bodies():
        rows = codec.rows(text.encode(), "application/json")
        if rows is None:
            continue
        kept += 1
        try:
            expected = scoring_server._parse_json_data(text, model.metadata, schema).data
        except MlflowException as error:
            try:
                codec.frame([rows], schema)
            except BadRequest as refused:
                assert str(refused) == error.message
                continue
            raise AssertionError(f"MLflow refuses {text}; rows did not")
        pd.testing.assert_frame_equal(codec.frame([rows], schema), expected)
    assert kept >= 8

"""Queued requests are predicted together only where that cannot change any answer."""

from __future__ import annotations

import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import mlflow.pyfunc
import pytest
import requests

from tests.processes import eventually
from tests.serving.conftest import delivery_frame, save_gated_sklearn_model, save_pyfunc_model, start_runtime

ROWS, _ = delivery_frame(n=64, seed=21)


def body(index: int) -> str:
    row = ROWS.iloc[[index]]
    return json.dumps({"dataframe_split": json.loads(row.to_json(orient="split", index=False))})


def hammer(
    server, bodies: list[str], threads: int = 16, rounds: int = 6, types: dict[str, str] | None = None
) -> list[requests.Response]:
    """Each body sent ``rounds`` times, from ``threads`` keep-alive sessions at once; ``types``:
    a body's Content-Type where it is not JSON."""

    def worker(start: int) -> list[requests.Response]:
        with requests.Session() as session:
            return [
                session.post(
                    server.url + "/invocations",
                    data=(sent := bodies[(start + i) % len(bodies)]),
                    headers={"Content-Type": (types or {}).get(sent, "application/json")},
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


def _mlflow_answer(model, body: str, content_type: str) -> tuple[int, object]:
    """What MLflow's own scoring server answers for ``body`` (its ``invocations``, in process)."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    try:
        reply = scoring_server.invocations(body, content_type, model, model.metadata.get_input_schema())
    except MlflowException as error:
        return error.get_http_status_code(), None
    return reply.status, json.loads(reply.response)["predictions"] if reply.status == 200 else None


COLUMNS = ["distance_km", "stops", "weather"]
CSV = "text/csv"


def _mixed_bodies() -> dict[str, str]:
    """Bodies (to their Content-Type) that batch together or apart: value types that pandas or
    numpy read differently (int and float, numbers as text, null, bool), every form kept as rows,
    several rows, and bodies MLflow refuses."""
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
    bodies = [json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [row]}}) for row in split]
    bodies.append(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": split[:3]}}))
    # Same columns and value types as the first, other values: decoded together with it.
    bodies.append(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[77.0, 8, "snow"]]}}))
    bodies.append(
        json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[150.5, 1, "clear"], [3.0, 9, "rain"]]}})
    )
    bodies.append(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[1.0, 2, "rain"]], "index": [7]}}))
    bodies.append(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[1.0, 2]]}}))  # a short row
    for form in ("dataframe_records", "instances"):
        bodies.append(json.dumps({form: [{"weather": "rain", "stops": 5, "distance_km": 99.0}]}))  # other order
        bodies.append(json.dumps({form: [{"distance_km": 9.0, "stops": 5, "weather": "snow"}] * 3}))
        bodies.append(json.dumps({form: [{"distance_km": 250.0, "stops": 9, "weather": "clear"}]}))
        bodies.append(json.dumps({form: [{"distance_km": 9, "stops": 5, "weather": "snow"}]}))  # an int
        bodies.append(json.dumps({form: [{"distance_km": 9.0, "stops": "x", "weather": "snow"}]}))
        bodies.append(json.dumps({form: [{"distance_km": 9.0, "weather": "snow"}]}))  # missing column
    bodies.append(json.dumps({"inputs": {"distance_km": [5.0, 6.0], "stops": [1, 2], "weather": ["rain", "snow"]}}))
    bodies.append(json.dumps({"inputs": {"distance_km": [280.0], "stops": [9], "weather": ["snow"]}}))
    bodies.append(json.dumps({"inputs": {"distance_km": [7], "stops": [3], "weather": ["clear"]}}))
    bodies.append(json.dumps({"inputs": {"distance_km": [7.5], "stops": [3.5], "weather": ["clear"]}}))
    bodies.append(json.dumps({"inputs": {"distance_km": [7.5, 1.0], "stops": [3], "weather": ["clear"]}}))  # ragged
    typed = dict.fromkeys(bodies, "application/json")
    for text in (
        "distance_km,stops,weather\n12.5,3,rain\n",
        "distance_km,stops,weather\n99,1,snow\n7.25,2,clear\n",
        "distance_km,stops,weather\n290,9,snow",  # no final newline
        "weather,stops,distance_km\nrain,4,15.0\n",  # another order
        "stops,distance_km,weather\n3,12.5,rain\n",
        "stops,distance_km,weather\nthree,12.5,rain\n",  # a long that is not: the group is decoded alone
        "stops,distance_km,weather\n,12.5,rain\n",  # empty: NaN in a long column
        "distance_km,weather\n12.5,rain\n",  # a missing column
        'distance_km,stops,weather\n12.5,3,"rain"\n',  # quoted: decoded alone
    ):
        typed[text] = CSV
    return typed


def test_requests_decoded_together_answer_as_mlflow_answers_each_alone(runtime, sklearn_model):
    """Each body, hammered in batches with every other, gets MLflow's own answer for it alone:
    the same status, and for a 200 the same predictions."""
    model = mlflow.pyfunc.load_model(str(sklearn_model))
    bodies = _mixed_bodies()
    expected = {body: _mlflow_answer(model, body, content_type) for body, content_type in bodies.items()}
    assert {status for status, _ in expected.values()} == {200, 400}  # the cases do differ
    replies = hammer(runtime, list(bodies) * 3, types=bodies)
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
    names = ["a", "b", "c"]

    def kept(body: object, content_type: str = "application/json"):
        text = body if isinstance(body, str) else json.dumps(body)
        return codec.rows(text.encode(), content_type, names)

    split = kept({"dataframe_split": {"columns": columns, "data": [[1.0, 2]]}})
    assert split is not None and (split.orient, split.columns, split.count) == ("split", ("a", "b"), 1)
    as_ints = kept({"dataframe_split": {"columns": columns, "data": [[1, 2]]}}, "")
    assert as_ints is not None and as_ints.key != split.key  # pandas reads ints and floats apart
    for body, orient, count in [
        ({"dataframe_records": [{"a": 1.0, "b": 2}] * 2}, "records", 2),
        ({"instances": [{"a": 1.0, "b": 2}]}, "instances", 1),
        ({"inputs": {"a": [1.0, 2.0, 3.0], "b": [1, 2, 3]}}, "inputs", 3),
        ("a,b\n1.0,2\n3.0,4", "csv", 2),
    ]:
        content_type = "text/csv; header=present" if orient == "csv" else "application/json; charset=utf-8"
        found = kept(body, content_type)
        assert found is not None and (found.orient, found.count) == (orient, count), body
    for body, content_type in [
        ({"dataframe_split": {"columns": columns, "data": [[1.0, 2]]}, "params": {"k": 1}}, "application/json"),
        ({"dataframe_split": {"columns": columns, "data": [[1.0, 2]], "index": [3]}}, "application/json"),
        ({"dataframe_split": {"data": [[1.0, 2]]}}, "application/json"),
        ({"dataframe_split": {"columns": columns, "data": [[1.0]]}}, "application/json"),
        ({"dataframe_split": {"columns": columns, "data": []}}, "application/json"),
        ({"dataframe_records": [{"a": 1.0, "b": 2}, {"b": 2, "a": 1.0}]}, "application/json"),
        ({"inputs": [[1.0, 2]]}, "application/json"),
        ({"inputs": {"a": [1.0, 2.0], "b": [1]}}, "application/json"),
        ({"dataframe_split": {"columns": columns, "data": [[1.0, 2]]}}, "application/json; charset=latin-1"),
        ({"dataframe_split": {"columns": columns, "data": [[1.0, 2]]}}, "text/csv"),
        ("a,b\n1.0,2\n", "text/csv; header=absent"),
        ("a,x\n1.0,2\n", "text/csv"),  # a column the signature does not name
        ('a,b\n1.0,"2"\n', "text/csv"),
        ("a,b\n1.0,2\n\n3.0,4\n", "text/csv"),  # a blank line
        ("a,b\n1,2,3\n", "text/csv"),  # a wider row: pandas would take its first field as an index
        ("a,b\n1\n", "text/csv"),  # a narrower one
        ("a,b", "text/csv"),
        ("a,b\n1.0,2\n", "text/plain"),
    ]:
        assert kept(body, content_type) is None, (body, content_type)
    assert kept("{not json") is None


def test_rows_decode_to_what_mlflows_parser_decodes(sklearn_model):
    """Frame for frame (dtypes included: the cast is skipped only where it would change nothing)
    or array for array, or the same refusal, for every body the mixed test sends."""
    import io

    import numpy as np
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    from mlflow_plugins.errors import BadRequest
    from mlflow_plugins.serving import codec

    model = mlflow.pyfunc.load_model(str(sklearn_model))
    schema = model.metadata.get_input_schema()
    orients = set()
    for text, content_type in _mixed_bodies().items():
        rows = codec.rows(text.encode(), content_type, COLUMNS)
        if rows is None:
            continue
        orients.add(rows.orient)
        try:
            if content_type == CSV:
                expected = scoring_server.parse_csv_input(io.StringIO(text), schema=schema)
            else:
                expected = scoring_server._parse_json_data(text, model.metadata, schema).data
        except MlflowException as error:
            with pytest.raises(BadRequest) as refused:
                codec.frame([rows], schema)
            assert str(refused.value) == error.message
            continue
        decoded = codec.frame([rows], schema)
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(decoded, expected)
        else:
            assert list(decoded) == list(expected), text
            for column in expected:
                np.testing.assert_array_equal(decoded[column], expected[column])
                assert decoded[column].dtype == expected[column].dtype, (text, column)
    assert orients == {"split", "records", "instances", "inputs", "csv"}


def test_one_batch_of_every_body_answers_each_as_mlflow_does(sklearn_model):
    """The worker's batch step itself, given every body twice in one batch (so every group that
    can be decoded together is, deterministically): each answer is MLflow's for that body alone."""
    import random

    from mlflow_plugins.serving.app import SingleModelApp
    from mlflow_plugins.serving.http import Request
    from mlflow_plugins.serving.model import ServedModel

    model = mlflow.pyfunc.load_model(str(sklearn_model))
    bodies = _mixed_bodies()
    app = SingleModelApp(lambda: ServedModel(sklearn_model), timeout=None)
    assert app.ready.wait(60) and app.healthy
    sent = list(bodies) * 2
    random.Random(7).shuffle(sent)
    batch = [Request("POST", "/invocations", "", {"content-type": bodies[b]}, b.encode()) for b in sent]
    replies = app.handle_batch(batch)
    sizes = set()
    for body, reply in zip(sent, replies):
        status, predictions = _mlflow_answer(model, body, bodies[body])
        assert reply.status == status, (body, reply.body)
        if status == 200:
            assert json.loads(reply.body)["predictions"] == predictions, body
            sizes.add(int(reply.headers["X-Batch-Size"]))
    assert max(sizes) >= 4  # same-form bodies were decoded and predicted together


def test_each_prediction_says_how_long_the_worker_took_for_it(runtime):
    """``Server-Timing: app;dur=MS`` on predictions: the worker's own time, within the client's."""
    started = time.perf_counter()
    reply = requests.post(
        runtime.url + "/invocations", data=body(0), headers={"Content-Type": "application/json"}, timeout=60
    )
    elapsed = time.perf_counter() - started
    assert reply.status_code == 200, reply.text
    name, _, duration = reply.headers["Server-Timing"].partition(";dur=")
    assert name == "app" and 0 < float(duration) / 1000 <= elapsed
    refused = requests.post(runtime.url + "/invocations", data="{", headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and refused.headers["Server-Timing"].startswith("app;dur=")
    assert "Server-Timing" not in requests.get(runtime.url + "/ping", timeout=10).headers  # answered on the loop


def test_split_rows_of_numbers_under_a_signature_of_doubles_decode_as_mlflow_does():
    """The one-array path (``codec._numeric_frame``) against MLflow's parse and cast, frame for
    frame, alone and combined; bodies it must not take (a bool, a null, the columns in another
    order, a string, an integer beyond a double's range) go MLflow's way and match too."""
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model, ModelSignature
    from mlflow.pyfunc import scoring_server
    from mlflow.types import ColSpec, Schema

    from mlflow_plugins.errors import BadRequest
    from mlflow_plugins.serving import codec

    names = [f"f{i}" for i in range(30)]
    schema = Schema([ColSpec("double", name) for name in names])
    metadata = Model(signature=ModelSignature(inputs=schema))
    floats = [[i * 0.5 + j for i in range(30)] for j in range(2)]
    mixed = [[i if i % 2 else i + 0.25 for i in range(30)], [2**60 + 1] * 30]  # ints, and one too big for a double
    bodies = {
        "floats": {"columns": names, "data": floats},
        "ints and floats": {"columns": names, "data": mixed},
        "a bool": {"columns": names, "data": [[True] + floats[0][1:]]},
        "a null": {"columns": names, "data": [[None] + floats[0][1:]]},
        "reordered": {"columns": names[::-1], "data": floats},
        "a string": {"columns": names, "data": [["x"] + floats[0][1:]]},
        "an int beyond a double": {"columns": names, "data": [[10**400] + floats[0][1:]]},  # MLflow's 400
    }
    for label, body in bodies.items():
        text = json.dumps({"dataframe_split": body})
        kept = codec.rows(text.encode(), "application/json", names)
        assert kept is not None, label
        try:
            expected = scoring_server._parse_json_data(text, metadata, schema).data
        except MlflowException as error:
            with pytest.raises(BadRequest) as refused:
                codec.frame([kept], schema)
            assert str(refused.value) == error.message, label
            continue
        pd.testing.assert_frame_equal(codec.frame([kept], schema), expected, obj=label)
        twice = codec.frame([kept, kept], schema)
        pd.testing.assert_frame_equal(twice, pd.concat([expected, expected], ignore_index=True), obj=label)

"""For every payload form, our runtime and ``mlflow models serve`` predict the same."""

from __future__ import annotations

import json

import pytest
import requests

from tests.serving.conftest import delivery_frame

FRAME, _ = delivery_frame(n=25, seed=7)
RECORDS = json.loads(FRAME.to_json(orient="records"))
SPLIT = json.loads(FRAME.to_json(orient="split", index=False))
COLUMNS = {c: FRAME[c].tolist() for c in FRAME.columns}
CSV_WITH_HEADER = FRAME.to_csv(index=False)
CSV_NO_HEADER = FRAME.to_csv(index=False, header=False)
JSONL_RECORDS = "".join(json.dumps(r) + "\n" for r in RECORDS)
JSONL_ROWS = "".join(json.dumps(row) + "\n" for row in SPLIT["data"])

JSON_FORMS = {
    "dataframe_split": {"dataframe_split": SPLIT},
    "dataframe_records": {"dataframe_records": RECORDS},
    "instances": {"instances": RECORDS},
    "inputs": {"inputs": COLUMNS},
    "dataframe_split with params": {"dataframe_split": SPLIT, "params": {"threshold": 0.3}},
}


def post(server, body, content_type):
    data = json.dumps(body) if not isinstance(body, str) else body
    return requests.post(server.url + "/invocations", data=data, headers={"Content-Type": content_type}, timeout=30)


@pytest.mark.parametrize("form", list(JSON_FORMS))
def test_json_forms_predict_the_same_as_mlflow(runtime, mlflow_server, form):
    ours = post(runtime, JSON_FORMS[form], "application/json")
    theirs = post(mlflow_server, JSON_FORMS[form], "application/json")
    assert (ours.status_code, theirs.status_code) == (200, 200), (ours.text, theirs.text)
    assert ours.json() == theirs.json()
    assert len(ours.json()["predictions"]) == len(FRAME)


@pytest.mark.parametrize(
    "ours_body, ours_type",
    [
        (CSV_WITH_HEADER, "text/csv"),
        (CSV_NO_HEADER, "text/csv"),
        (CSV_NO_HEADER, "text/csv; header=absent"),
        (JSONL_RECORDS, "application/jsonlines"),
        (JSONL_ROWS, "application/jsonlines"),
    ],
)
def test_csv_and_jsonlines_predict_the_same_as_mlflow_csv(runtime, mlflow_server, ours_body, ours_type):
    theirs = post(mlflow_server, CSV_WITH_HEADER, "text/csv")
    ours = post(runtime, ours_body, ours_type)
    assert (ours.status_code, theirs.status_code) == (200, 200), (ours.text, theirs.text)
    assert ours.json() == theirs.json()


def test_bad_input_is_a_400_on_both(runtime, mlflow_server):
    body = {"dataframe_records": [{"distance_km": 1.0, "weather": "rain"}]}
    ours, theirs = post(runtime, body, "application/json"), post(mlflow_server, body, "application/json")
    assert (ours.status_code, theirs.status_code) == (400, 400)
    assert "stops" in ours.json()["message"] and ours.json()["error_code"] == theirs.json()["error_code"]

"""The scoring-protocol conformance suite: every case runs against our ``serve`` and against
``mlflow models serve`` on the same model, and both answers are checked.

Cases come from MLflow's own scoring-server tests (``tests/pyfunc/test_scoring_server.py`` and
``mlflow/pyfunc/scoring_server/`` upstream), SageMaker's container contract ("How Your Container
Should Respond to Inference Requests / Health Check Requests") and issue 16. Where the two
servers answer differently, the case says why, and docs/serving-conformance.md lists it; a test
below keeps that table and :data:`CASES` in step.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from tests.serving.conftest import (
    SKLEARN,
    delivery_frame,
    pinned,
    save_pyfunc_model,
    start_mlflow_serve,
    start_runtime,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving-conformance.md"
UPSTREAM = "MLflow test_scoring_server.py"
SERVER = "MLflow scoring_server/__init__.py"
CONTRACT = "SageMaker container contract"
ISSUE = "issue 16"

FRAME, _ = delivery_frame(n=25, seed=7)


def _iris() -> np.ndarray:
    from sklearn import datasets

    return datasets.load_iris().data[:, :2]


def _split(frame: pd.DataFrame) -> dict:
    return json.loads(frame.to_json(orient="split", index=False))


def _records(frame: pd.DataFrame) -> list:
    return json.loads(frame.to_json(orient="records"))


def _inspect_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "boolean": [True, False, True],
            "integer": np.array([1, 2, 3], np.int32),
            "long": np.array([1, 2, 3], np.int64),
            "float": np.array([math.pi, 2 * math.pi, 3 * math.pi], np.float32),
            "double": [math.pi, 2 * math.pi, 3 * math.pi],
            "string": ["a", "b", "c"],
        }
    )


def _parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out)
    return out.getvalue()


@dataclass(frozen=True)
class Case:
    id: str
    model: str  # delivery (signature), plain (no signature), inspect (typed signature, params)
    body: object  # dict/list -> JSON, str/bytes as is
    content_type: str = "application/json"
    ours: int = 200
    mlflow: int = 200
    accept: str | None = None
    method: str = "POST"
    path: str = "/invocations"
    compare: str = "predictions"  # predictions | body | status (what must be equal when both are 200)
    source: str = UPSTREAM
    why: str = ""  # where the two servers differ: why (a documented extension, or MLflow's own bug)

    @property
    def differs(self) -> bool:
        return self.ours != self.mlflow or self.compare == "status"


D_SPLIT, D_RECORDS = _split(FRAME), _records(FRAME)
CSV_HEADER = FRAME.to_csv(index=False)
CSV_REORDERED = FRAME[["weather", "stops", "distance_km"]].to_csv(index=False)
CSV_EXTRA = FRAME.assign(city="Lisbon").to_csv(index=False)
CSV_NO_HEADER = FRAME.to_csv(index=False, header=False)
PLAIN = pd.DataFrame(_iris()[:20])
TOO_BIG = '{"dataframe_records": [' + ",".join([json.dumps(D_RECORDS[0])] * 120_000) + "]}"
EXTENSION = "documented extension:"

CASES = [
    # JSON input: malformed and misshapen payloads (upstream's error tests)
    Case("json-malformed", "plain", "this is,,,, not valid json", ours=400, mlflow=400, compare="status"),
    Case("json-number", "plain", "1", ours=400, mlflow=400, compare="status"),
    Case("json-string", "plain", '"1"', ours=400, mlflow=400, compare="status"),
    Case("json-list", "plain", "[1]", ours=400, mlflow=400, compare="status"),
    Case("json-no-format-key", "plain", {"not": "a serialized dataframe"}, ours=400, mlflow=400, compare="status"),
    Case(
        "json-two-format-keys",
        "plain",
        {"dataframe_records": [], "dataframe_split": {"data": []}},
        ours=400,
        mlflow=400,
        compare="status",
    ),
    Case(
        "json-split-given-records",
        "plain",
        {"dataframe_split": _records(PLAIN)},
        ours=400,
        mlflow=400,
        compare="status",
    ),
    Case(
        "json-records-given-split",
        "plain",
        {"dataframe_records": _split(PLAIN)},
        ours=400,
        mlflow=400,
        compare="status",
    ),
    Case(
        "json-split-bad-index",
        "plain",
        {"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}},
        ours=400,
        mlflow=400,
        compare="status",
    ),
    Case(
        "json-wrong-column-count",
        "plain",
        {"dataframe_split": _split(pd.DataFrame(np.arange(10)))},
        ours=400,
        mlflow=400,
        compare="status",
        source=f"{UPSTREAM}; {ISSUE}",
    ),
    Case(
        "json-zero-rows-no-signature",
        "plain",
        {"dataframe_split": {"columns": [0, 1], "data": []}},
        ours=400,
        mlflow=400,
        compare="status",
        source=ISSUE,
    ),
    Case(
        "json-zero-rows-signature",
        "delivery",
        {"dataframe_split": {"columns": list(FRAME.columns), "data": []}},
        ours=400,
        mlflow=400,
        compare="status",
        source=ISSUE,
    ),
    Case(
        "json-missing-column",
        "delivery",
        {"dataframe_records": [{"distance_km": 1.0, "weather": "rain"}]},
        ours=400,
        mlflow=400,
        compare="status",
    ),
    # JSON input: the accepted forms
    Case("json-records", "plain", {"dataframe_records": _records(PLAIN)}),
    Case(
        "json-records-charset",
        "plain",
        {"dataframe_records": _records(PLAIN)},
        content_type="application/json; charset=UTF-8",
    ),
    Case("json-split", "plain", {"dataframe_split": _split(PLAIN)}),
    Case("json-instances", "plain", {"instances": PLAIN.to_numpy().tolist()}),
    Case("json-signature-split", "delivery", {"dataframe_split": D_SPLIT}),
    Case("json-signature-records", "delivery", {"dataframe_records": D_RECORDS}),
    Case("json-signature-inputs", "delivery", {"inputs": {c: FRAME[c].tolist() for c in FRAME.columns}}),
    Case("json-signature-extra-column", "delivery", {"dataframe_records": _records(FRAME.assign(city="x"))}),
    Case("json-typed-split", "inspect", {"dataframe_split": _split(_inspect_frame()[::-1].iloc[:, ::-1])}),
    Case("json-typed-records", "inspect", {"dataframe_records": _records(_inspect_frame())}),
    Case("json-typed-inputs", "inspect", {"inputs": _inspect_frame().to_dict(orient="list")}),
    Case("params-none", "inspect", {"dataframe_records": _records(_inspect_frame())}),
    Case(
        "params-invalid-value",
        "inspect",
        {"dataframe_records": _records(_inspect_frame()), "params": {"param1": "not a date"}},
        ours=400,
        mlflow=400,
        compare="status",
    ),
    Case(
        "params-unknown-ignored",
        "inspect",
        {"dataframe_records": _records(_inspect_frame()), "params": {"invalid_param": "value"}},
    ),
    Case(
        "model-raises",
        "inspect",
        {"dataframe_records": _records(_inspect_frame()), "params": {"fail": True}},
        ours=500,
        mlflow=400,
        compare="status",
        source=ISSUE,
        why="a model that raises on well-formed input is a server failure (5xx: SageMaker's "
        "Invocation5XXErrors alarm must see it); MLflow answers 400 for any model exception. "
        "Client mistakes (no rows, wrong column count, schema errors) are 400 on both",
    ),
    # Content types
    Case(
        "type-unsupported",
        "plain",
        _split(PLAIN),
        content_type="not_a_supported_content_type",
        ours=415,
        mlflow=415,
        compare="status",
    ),
    Case(
        "type-unknown-parameter",
        "plain",
        {"dataframe_split": _split(PLAIN)},
        content_type="application/json; something=something",
        ours=415,
        mlflow=415,
        compare="status",
    ),
    Case(
        "type-charset-latin1",
        "plain",
        {"dataframe_split": _split(PLAIN)},
        content_type="application/json; charset=latin-1",
        ours=415,
        mlflow=415,
        compare="status",
    ),
    Case("parquet", "delivery", _parquet(FRAME), content_type="application/vnd.apache.parquet", source=SERVER),
    Case(
        "jsonlines",
        "delivery",
        "".join(json.dumps(r) + "\n" for r in D_RECORDS),
        content_type="application/jsonlines",
        ours=200,
        mlflow=415,
        compare="status",
        source=CONTRACT,
        why=f"{EXTENSION} JSON Lines input (SageMaker batch transform's split format)",
    ),
    # CSV: the header rule
    Case("csv-empty", "delivery", "", content_type="text/csv", ours=400, mlflow=400, compare="status"),
    Case("csv-header", "delivery", CSV_HEADER, content_type="text/csv"),
    Case("csv-header-reordered", "delivery", CSV_REORDERED, content_type="text/csv", source=ISSUE),
    Case("csv-header-extra-column", "delivery", CSV_EXTRA, content_type="text/csv", source=ISSUE),
    Case(
        "csv-header-only",
        "delivery",
        CSV_HEADER.splitlines()[0] + "\n",
        content_type="text/csv",
        ours=400,
        mlflow=400,
        compare="status",
        source=ISSUE,
    ),
    Case("csv-numeric-header-no-signature", "plain", PLAIN.to_csv(index=False), content_type="text/csv", source=ISSUE),
    Case(
        "csv-no-header-signature",
        "delivery",
        CSV_NO_HEADER,
        content_type="text/csv",
        ours=200,
        mlflow=400,
        compare="status",
        source=CONTRACT,
        why=f"{EXTENSION} SageMaker sends headerless CSV; with a signature, a first line that names no "
        "signature column is data (MLflow takes it as a header and fails on missing columns)",
    ),
    Case(
        "csv-header-absent",
        "plain",
        PLAIN.to_csv(index=False, header=False),
        content_type="text/csv; header=absent",
        ours=200,
        mlflow=415,
        compare="status",
        source=ISSUE,
        why=f"{EXTENSION} RFC 4180's header parameter decides; MLflow refuses every parameter but charset",
    ),
    Case(
        "csv-header-present",
        "delivery",
        CSV_HEADER,
        content_type="text/csv; header=present",
        ours=200,
        mlflow=415,
        compare="status",
        source=ISSUE,
        why=f"{EXTENSION} RFC 4180's header parameter decides; MLflow refuses every parameter but charset",
    ),
    Case(
        "csv-wrong-width-no-header",
        "delivery",
        "1.0,2,rain,9\n",
        content_type="text/csv",
        ours=400,
        mlflow=400,
        compare="status",
        source=ISSUE,
    ),
    # Accept (MLflow ignores Accept and always answers JSON)
    Case(
        "accept-csv",
        "delivery",
        {"dataframe_split": D_SPLIT},
        accept="text/csv",
        compare="status",
        source=CONTRACT,
        why=f"{EXTENSION} CSV output when Accept prefers it (batch transform's "
        "AssembleWith Line); MLflow ignores Accept",
    ),
    Case(
        "accept-q-values",
        "delivery",
        {"dataframe_split": D_SPLIT},
        accept="text/csv;q=0.1, application/json",
        source=ISSUE,
    ),
    Case(
        "accept-unsupported",
        "delivery",
        {"dataframe_split": D_SPLIT},
        accept="image/png",
        ours=406,
        mlflow=200,
        compare="status",
        source=ISSUE,
        why="RFC 9110 allows either; we answer 406 naming the types we can send, rather than a type the "
        "client said it cannot read",
    ),
    # Routes and limits
    Case("ping", "delivery", b"", method="GET", path="/ping", compare="status", source=CONTRACT),
    Case("health", "delivery", b"", method="GET", path="/health", compare="status", source=SERVER),
    Case("version", "delivery", b"", method="GET", path="/version", compare="body", source=SERVER),
    Case(
        "unknown-route",
        "delivery",
        b"",
        method="GET",
        path="/nowhere",
        ours=404,
        mlflow=404,
        compare="status",
        source=SERVER,
    ),
    Case(
        "wrong-method",
        "delivery",
        b"",
        method="POST",
        path="/ping",
        ours=405,
        mlflow=405,
        compare="status",
        source=SERVER,
    ),
    Case(
        "over-6-mb",
        "delivery",
        TOO_BIG,
        ours=413,
        mlflow=200,
        compare="status",
        source=CONTRACT,
        why=f"{EXTENSION} SageMaker refuses invocation payloads over 6 MB; we say so with 413 before "
        "reading the body, so a local test fails as the endpoint would",
    ),
]


def _save_plain(path: Path) -> Path:
    import mlflow.sklearn
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(_iris(), datasets.load_iris().target)
    mlflow.sklearn.save_model(model, str(path), pip_requirements=pinned(*SKLEARN))
    return path


def _save_inspect(path: Path) -> Path:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema

    frame = _inspect_frame()
    schema = Schema([ColSpec(c, c) for c in frame.columns])
    params = ParamSchema(
        [
            ParamSpec("param1", DataType.datetime, np.datetime64("2023-07-01")),
            ParamSpec("fail", DataType.boolean, False),
        ]
    )
    return save_pyfunc_model(path, "Inspect", signature=ModelSignature(inputs=schema, params=params))


@pytest.fixture(scope="module")
def servers(tmp_path_factory, sklearn_model):
    root = tmp_path_factory.mktemp("conformance")
    models = {
        "delivery": sklearn_model,
        "plain": _save_plain(root / "plain"),
        "inspect": _save_inspect(root / "inspect"),
    }
    started = {}
    try:
        for name, path in models.items():  # one pair at a time: a loaded machine starts them slowly
            started[name] = (start_runtime("--model-dir", str(path), "--workers", "1"), start_mlflow_serve(path))
            for server in started[name]:
                server.wait_ready()
        yield started
    finally:
        for pair in started.values():
            for server in pair:
                server.stop()


def send(server, case: Case) -> requests.Response:
    body = case.body if isinstance(case.body, (str, bytes)) else json.dumps(case.body)
    headers = {"Content-Type": case.content_type} if case.method == "POST" else {}
    if case.accept:
        headers["Accept"] = case.accept
    return requests.request(case.method, server.url + case.path, data=body, headers=headers, timeout=60)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_against_both_servers(servers, case):
    ours_server, mlflow_server = servers[case.model]
    ours, theirs = send(ours_server, case), send(mlflow_server, case)
    assert (ours.status_code, theirs.status_code) == (case.ours, case.mlflow), (ours.text[:500], theirs.text[:500])
    if case.ours >= 400:
        answer = ours.json()
        assert answer["error_code"] and answer["message"] and "Traceback" not in ours.text
    if case.ours != 200 or case.mlflow != 200 or case.compare == "status":
        return
    if case.compare == "body":
        assert ours.text.strip() == theirs.text.strip()
        return
    assert ours.json() == theirs.json()
    assert ours.headers["Content-Type"] == "application/json"


def test_accept_csv_answers_the_same_predictions_as_csv(servers):
    ours_server, mlflow_server = servers["delivery"]
    case = next(c for c in CASES if c.id == "accept-csv")
    ours = send(ours_server, case)
    expected = send(mlflow_server, case).json()["predictions"]
    assert ours.headers["Content-Type"] == "text/csv"
    assert [int(line) for line in ours.text.splitlines()] == expected


def test_csv_without_header_and_with_signature_scores_every_row(servers):
    ours_server, mlflow_server = servers["delivery"]
    ours = requests.post(
        ours_server.url + "/invocations", data=CSV_NO_HEADER, headers={"Content-Type": "text/csv"}, timeout=60
    )
    theirs = requests.post(
        mlflow_server.url + "/invocations", data=CSV_HEADER, headers={"Content-Type": "text/csv"}, timeout=60
    )
    assert ours.json() == theirs.json() and len(ours.json()["predictions"]) == len(FRAME)


def test_the_doc_lists_every_case_and_every_difference():
    text = DOC.read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in text.splitlines() if line.startswith("| `")}
    assert sorted(rows) == sorted(c.id for c in CASES)
    for case in CASES:
        row = rows[case.id]
        assert f"| {case.ours} |" in row and f"| {case.mlflow} |" in row, row
        if case.differs and case.ours != case.mlflow:
            assert case.why and case.why.split(":")[0] in row, f"{case.id}: the doc must say why the answers differ"

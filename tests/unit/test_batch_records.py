"""The sandbox's batch transform record handling, against the rules of AWS's "Associate
Prediction Results with Input Records" page: splitting, batching under the payload limit, the
JSONPath operators it lists, joins and assembly."""

from __future__ import annotations

import json

import pytest

from mlflow_plugins.sandbox.sagemaker import _records as records


def test_line_split_drops_blank_lines_and_none_keeps_the_object_whole():
    assert records.split(b"a\r\nb\n\nc\n", "Line") == [b"a", b"b", b"c"]
    assert records.split(b"a\nb\n", "None") == [b"a\nb\n"]


def test_multi_record_packs_lines_up_to_the_payload_limit_and_single_record_sends_one_each():
    line = b"x" * (400 * 1024)
    packed = list(records.batches([line] * 5, "MultiRecord", 1))
    assert [len(b) for b in packed] == [2, 2, 1]  # two 400 KB lines and their newlines fit in 1 MB
    assert [len(b) for b in records.batches([line] * 3, "SingleRecord", 1)] == [1, 1, 1]
    assert [len(b) for b in records.batches([line] * 5, "MultiRecord", 0)] == [5]  # 0: no limit


def test_a_record_over_the_limit_is_refused_with_awss_words():
    with pytest.raises(records.RecordError, match="Too much data for max payload size"):
        list(records.batches([b"x" * (1024 * 1024 + 1)], "SingleRecord", 1))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("$", [1, 2, 3], [1, 2, 3]),
        ("$[1:]", ["id", 1, 2], [1, 2]),
        ("$[0,-1]", ["id", 1, 2], ["id", 2]),
        ("$[:2]", [1, 2, 3], [1, 2]),
        ("$[-1]", [1, 2, 3], 3),
        ("$.features", {"features": {"a": 1}}, {"a": 1}),
        ("$.features.a", {"features": {"a": 1}}, 1),
        ("$['id','SageMakerOutput']", {"id": 1, "x": 2, "SageMakerOutput": 0}, {"id": 1, "SageMakerOutput": 0}),
        ("$.*", {"a": 1, "b": 2}, [1, 2]),
    ],
)
def test_jsonpath_operators_listed_by_aws(path, value, expected):
    assert records.select(value, path) == expected


@pytest.mark.parametrize("path", ["$..a", "$[?(@.a>1)]", "features", "$[9]"])
def test_other_jsonpath_or_an_index_outside_the_record_fails_the_record(path):
    with pytest.raises(records.RecordError):
        records.select([1, 2], path)


def test_a_csv_line_joins_with_its_answer_and_a_json_object_gains_sagemaker_output():
    assert records.joined(b"id-1,2.5,snow", b"1", "csv", "text/csv", True, "$[0,-1]") == b"id-1,1"
    assert json.loads(records.joined(b'{"id": 3}', b"0", "jsonlines", "application/jsonlines", True, None)) == {
        "id": 3,
        "SageMakerOutput": 0,
    }
    joined = records.joined(b"2.5,snow", b"[0.1, 0.9]", "csv", "application/jsonlines", True, None)
    assert json.loads(joined) == {"SageMakerInput": ["2.5", "snow"], "SageMakerOutput": [0.1, 0.9]}


def test_a_response_must_hold_one_answer_a_record_when_records_are_joined():
    assert records.answers(b'{"predictions": [1, 0]}', 2, "application/json", True) == [b"1", b"0"]
    assert records.answers(b"1\n0\n", 2, "text/csv", True) == [b"1", b"0"]
    with pytest.raises(records.RecordError, match="one answer a record"):
        records.answers(b"1\n", 2, "text/csv", True)


def test_assembly_by_line_ends_each_answer_with_one_newline_and_none_concatenates():
    assert records.assemble([b"1", b"2\n"], "Line") == b"1\n2\n"
    assert records.assemble([b"{}", b"{}"], "None") == b"{}{}"

"""How a batch transform job turns S3 objects into requests and answers into output objects,
after "Associate Prediction Results with Input Records" and the CreateTransformJob reference
(https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html):

* **Split** (``SplitType``): ``None`` sends the whole object as one record; ``Line`` makes each
  line a record.
* **Batch** (``BatchStrategy``): ``SingleRecord`` sends one record a request; ``MultiRecord``
  packs as many lines as fit in ``MaxPayloadInMB`` (0: no limit). A record larger than the limit
  fails the job.
* **Filter and join** (``DataProcessing``): ``InputFilter`` selects part of each record before it
  is sent (a CSV line is an array of its fields); ``JoinSource=Input`` joins each record with its
  answer (CSV: the answer's fields after the input's; a JSON object gains ``SageMakerOutput``; an
  array or CSV line under a JSON ``Accept`` becomes ``{"SageMakerInput": [...],
  "SageMakerOutput": ...}``); ``OutputFilter`` selects part of the joined record.
* **Assemble** (``AssembleWith``): ``Line`` writes the answers one a line; ``None`` concatenates
  them.

JSONPath: the operators AWS lists for data processing (``$``, ``.name``, ``['a','b']``,
``[0,2]``, negative indexes, ``[start:end]`` and ``*``) and nothing else.

Where the sandbox may differ from AWS: AWS's own wording of a failing record; how AWS treats a
filter or join when records are not split by line (here: refused at CreateTransformJob).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

CSV, JSON, JSONLINES = "text/csv", "application/json", "application/jsonlines"
_STEP = re.compile(
    r"\.(?P<name>[A-Za-z_][\w-]*)|\.(?P<star>\*)|\[(?P<bracket>[^\]]*)\]",
)


class RecordError(Exception):
    """A record the job cannot process; ``str()`` is the line the job's log gets."""


def kind(content_type: str | None) -> str:
    """``csv``, ``json`` or ``jsonlines`` for a content type (parameters ignored)."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base in ("text/csv", "application/csv"):
        return "csv"
    if base in ("application/jsonlines", "application/jsonl", "application/x-jsonlines"):
        return "jsonlines"
    return "json"


def split(data: bytes, split_type: str) -> list[bytes]:
    if split_type == "Line":
        return [line for line in data.replace(b"\r\n", b"\n").split(b"\n") if line.strip()]
    return [data]


def batches(records: list[bytes], strategy: str, max_payload_mb: int) -> Iterator[list[bytes]]:
    """Requests of records: one each, or as many lines as fit under the payload limit."""
    limit = max_payload_mb * 1024 * 1024 if max_payload_mb else None
    batch: list[bytes] = []
    size = 0
    for record in records:
        if limit is not None and len(record) > limit:
            raise RecordError(
                f"ClientError: Too much data for max payload size: a record of {len(record)} bytes is over "
                f"MaxPayloadInMB={max_payload_mb}"
            )
        if strategy == "SingleRecord":
            yield [record]
            continue
        if batch and limit is not None and size + len(record) + 1 > limit:
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += len(record) + 1
    if batch:
        yield batch


# ---- JSONPath (the data-processing subset) ---------------------------------------------------
def select(value: Any, path: str | None) -> Any:
    if not path or path == "$":
        return value
    if not path.startswith("$"):
        raise RecordError(f"ClientError: the JSONPath {path!r} does not start with $")
    rest, position = path[1:], 0
    while position < len(rest):
        step = _STEP.match(rest, position)
        if step is None:
            raise RecordError(f"ClientError: the JSONPath {path!r} uses an operator batch transform does not support")
        try:
            value = _apply(value, step, path)
        except ValueError:  # a bracket holding neither names nor numbers: a filter, a script
            raise RecordError(
                f"ClientError: the JSONPath {path!r} uses an operator batch transform does not support"
            ) from None
        position = step.end()
    return value


def _apply(value: Any, step: re.Match[str], path: str) -> Any:
    if step.group("name"):
        return _field(value, step.group("name"), path)
    if step.group("star"):
        return list(value.values()) if isinstance(value, dict) else list(value)
    inside = step.group("bracket").strip()
    if inside == "*":
        return list(value.values()) if isinstance(value, dict) else list(value)
    parts = [p.strip() for p in inside.split(",")]
    if all(p[:1] in "'\"" for p in parts):
        names = [p[1:-1] for p in parts]
        return _field(value, names[0], path) if len(names) == 1 else {n: _field(value, n, path) for n in names}
    if not isinstance(value, list):
        raise RecordError(f"ClientError: the JSONPath {path!r} indexes something that is not an array")
    picked: list[Any] = []
    for part in parts:
        if ":" in part:
            start, _, end = part.partition(":")
            picked.extend(value[int(start) if start.strip() else None : int(end) if end.strip() else None])
        else:
            index = int(part)
            if not -len(value) <= index < len(value):
                raise RecordError(
                    f"ClientError: the JSONPath {path!r} names index {index}, outside a record of {len(value)} fields"
                )
            if len(parts) == 1:
                return value[index]
            picked.append(value[index])
    return picked


def _field(value: Any, name: str, path: str) -> Any:
    if not isinstance(value, dict) or name not in value:
        raise RecordError(f"ClientError: the JSONPath {path!r} names {name!r}, which the record does not have")
    return value[name]


# ---- records as values -----------------------------------------------------------------------
def parse(record: bytes, content: str) -> Any:
    text = record.decode("utf-8")
    if content == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        return rows[0] if len(rows) == 1 else rows
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"ClientError: a record is not JSON ({error})") from None


def render(value: Any, content: str) -> bytes:
    if content == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="")
        writer.writerow(value if isinstance(value, list) else [value])
        return out.getvalue().encode()
    return json.dumps(value, separators=(",", ":")).encode()


def filtered_input(record: bytes, content: str, path: str | None) -> bytes:
    """The record as sent to the model: ``InputFilter`` applied."""
    if not path or path == "$":
        return record
    return render(select(parse(record, content), path), content)


def answers(response: bytes, count: int, accept: str, per_record: bool) -> list[bytes]:
    """The answer of each of ``count`` records in one response. When records are joined or
    filtered one by one (``per_record``), the response must hold one answer a record: a line
    each (CSV, JSON Lines), or a JSON ``predictions`` array as MLflow's scoring server writes."""
    if not per_record:
        return [response]
    out = kind(accept)
    if out == "json":
        try:
            body = json.loads(response)
        except json.JSONDecodeError:
            body = None
        items = body.get("predictions") if isinstance(body, dict) else body
        if isinstance(items, list) and len(items) == count:
            return [json.dumps(item, separators=(",", ":")).encode() for item in items]
    else:
        lines = split(response, "Line")
        if len(lines) == count:
            return lines
    raise RecordError(
        f"ClientError: the model answered a request of {count} record(s) with something that is not one answer a "
        f"record ({response[:200]!r}); joining and filtering need one answer a record"
    )


def joined(record: bytes, answer: bytes, content: str, accept: str, join: bool, path: str | None) -> bytes:
    """A record's output line: its answer, joined with the input record when asked, then
    ``OutputFilter`` applied."""
    out = kind(accept)
    out_content = "csv" if out == "csv" else "json"
    if not join and (not path or path == "$"):
        return answer
    value = parse(answer, out_content)
    if join:
        source = parse(record, content)
        if out == "csv":
            if isinstance(source, dict):
                raise RecordError("ClientError: a JSON object record cannot be joined with a CSV answer")
            source = source if isinstance(source, list) else [source]
            value = [*source, *(value if isinstance(value, list) else [value])]
        elif isinstance(source, dict):
            value = {**source, "SageMakerOutput": value}
        else:
            value = {"SageMakerInput": source, "SageMakerOutput": value}
    return render(select(value, path), out_content)


def assemble(lines: list[bytes], assemble_with: str) -> bytes:
    if assemble_with == "Line":
        return b"".join(line.rstrip(b"\n") + b"\n" for line in lines)
    return b"".join(lines)

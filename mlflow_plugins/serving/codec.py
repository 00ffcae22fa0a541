"""Request payloads in, predictions out.

Inputs:
* ``application/json``: every MLflow scoring-server form (``dataframe_split``,
  ``dataframe_records``, ``instances``, ``inputs``, with ``params``), parsed by MLflow's own
  scoring-server functions so the runtime reads a payload exactly as ``mlflow models serve`` does;
* ``text/csv``, with or without a header row. ``header=present`` or ``header=absent`` (RFC 4180's
  content-type parameter) says which; otherwise a first row equal to the signature's column names
  is a header, and without a signature a first row with any non-numeric field is;
* ``application/jsonlines``: one JSON object (a record) or array (a row in signature order) a line.

Outputs: JSON ``{"predictions": ...}`` as MLflow writes it, or ``text/csv`` or
``application/jsonlines`` when ``Accept`` asks for them.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server

from mlflow_plugins.errors import BadRequest, NotAcceptable, UnsupportedMediaType

JSON, CSV, JSONLINES = "application/json", "text/csv", "application/jsonlines"
JSONLINES_ALIASES = {JSONLINES, "application/jsonl", "application/x-jsonlines"}
INPUT_TYPES = [JSON, CSV, JSONLINES]
OUTPUT_TYPES = [JSON, CSV, JSONLINES]
MAX_DETAIL = 2000


@dataclass
class Parsed:
    data: Any
    params: dict[str, Any] | None = None
    unwrapped: bool = False  # MLflow's unified LLM input: predictions are returned unwrapped


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    mime, *rest = [part.strip() for part in value.split(";")]
    options = {k.strip().lower(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in rest)}
    return mime.lower(), options


def decode(body: bytes, content_type: str, metadata: Any, schema: Any) -> Parsed:
    mime, options = _media_type(content_type or JSON)
    if options.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(value=content_type, allowed=f"{', '.join(INPUT_TYPES)} in UTF-8")
    try:
        if mime == JSON:
            parsed = scoring_server._parse_json_data(body, metadata, schema)
            return Parsed(parsed.data, parsed.params, parsed.is_unified_llm_input)
        if mime == CSV:
            return Parsed(_csv(body, schema, options.get("header")))
        if mime in JSONLINES_ALIASES:
            return Parsed(_jsonlines(body, metadata, schema))
    except MlflowException as error:
        raise BadRequest.from_mlflow(error, MAX_DETAIL) from None
    raise UnsupportedMediaType(value=content_type, allowed=", ".join(INPUT_TYPES))


def _csv(body: bytes, schema: Any, header: str | None) -> Any:
    text = _utf8(body)
    names = schema.input_names() if schema is not None and schema.has_input_names() else None
    first = next(csv.reader(io.StringIO(text)), [])
    if header is None:
        header = "present" if _looks_like_header(first, names) else "absent"
    if header not in ("present", "absent"):
        raise BadRequest(detail=f"text/csv header={header!r} is not valid. Allowed: present, absent.")
    if header == "absent":
        columns = names if names and len(names) == len(first) else list(range(len(first)))
        text = ",".join(str(c) for c in columns) + "\n" + text
    return scoring_server.parse_csv_input(io.StringIO(text), schema=schema if names else None)


def _looks_like_header(first: list[str], names: list[str] | None) -> bool:
    if names:
        return [f.strip() for f in first] == list(names)
    def numeric(field: str) -> bool:
        try:
            float(field)
            return True
        except ValueError:
            return False
    return any(not numeric(f) for f in first)


def _jsonlines(body: bytes, metadata: Any, schema: Any) -> Any:
    rows = []
    for number, line in enumerate(_utf8(body).splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise BadRequest(detail=f"JSON Lines line {number} is not JSON: {error.msg}.") from None
    if not rows:
        raise BadRequest(detail="The JSON Lines body has no lines. Send one JSON object or array per line.")
    if all(isinstance(r, dict) for r in rows):
        payload = {"dataframe_records": rows}
    elif all(isinstance(r, list) for r in rows):
        names = schema.input_names() if schema is not None and schema.has_input_names() else None
        payload = {"dataframe_split": {"columns": names, "data": rows}} if names else {"inputs": rows}
    else:
        raise BadRequest(detail="JSON Lines lines must be all objects (records) or all arrays (rows).")
    return scoring_server._parse_json_data(json.dumps(payload), metadata, schema).data


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(detail=f"The body is not valid UTF-8: {error}.") from None


def choose_output(accept: str | None) -> str:
    if not accept:
        return JSON
    for part in accept.split(","):
        mime, _ = _media_type(part)
        if mime in ("*/*", "application/*"):
            return JSON
        if mime in JSONLINES_ALIASES:
            return JSONLINES
        if mime in OUTPUT_TYPES:
            return mime
    raise NotAcceptable(value=accept, allowed=", ".join(OUTPUT_TYPES))


def encode(predictions: Any, output: str, unwrapped: bool = False) -> bytes:
    if output == JSON:
        out = io.StringIO()
        writer = scoring_server.unwrapped_predictions_to_json if unwrapped else scoring_server.predictions_to_json
        writer(predictions, out)
        return out.getvalue().encode()
    rows = scoring_server._get_jsonable_obj(predictions, pandas_orient="records")
    if output == JSONLINES:
        return "".join(json.dumps(r, cls=scoring_server.NumpyEncoder) + "\n" for r in rows).encode()
    return _csv_rows(rows).encode()


def _csv_rows(rows: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    rows = rows if isinstance(rows, list) else [rows]
    if rows and isinstance(rows[0], dict):
        columns = list(rows[0])
        writer.writerow(columns)
        writer.writerows([row.get(c) for c in columns] for row in rows)
    else:
        writer.writerows(row if isinstance(row, list) else [row] for row in rows)
    return out.getvalue()

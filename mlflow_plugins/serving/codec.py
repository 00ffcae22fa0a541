"""Request payloads in, predictions out.

Inputs:
* ``application/json``: every MLflow scoring-server form (``dataframe_split``,
  ``dataframe_records``, ``instances``, ``inputs``, with ``params``), parsed by MLflow's own
  scoring-server functions so the runtime reads a payload exactly as ``mlflow models serve`` does;
* ``text/csv``: which first line is a header follows one rule (:func:`csv_has_header`), so the
  row count never depends on a guess;
* ``application/vnd.apache.parquet``: a DataFrame, as MLflow reads it;
* ``application/jsonlines``: one JSON object (a record) or array (a row in signature order) a line.

Content-Type parameters: ``charset`` (UTF-8 only) everywhere, ``header`` for CSV; any other
parameter is refused with 415, as MLflow does.

Outputs: JSON ``{"predictions": ...}`` as MLflow writes it, or ``text/csv`` or
``application/jsonlines`` when ``Accept`` prefers them (q-values honoured, RFC 9110 12.5.1).
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
PARQUET = "application/vnd.apache.parquet"
JSONLINES_ALIASES = {JSONLINES, "application/jsonl", "application/x-jsonlines"}
INPUT_TYPES = [JSON, CSV, JSONLINES, PARQUET]
OUTPUT_TYPES = [JSON, CSV, JSONLINES]
PARAMETERS = {JSON: {"charset"}, CSV: {"charset", "header"}, JSONLINES: {"charset"}, PARQUET: set()}
MAX_DETAIL = 2000


@dataclass
class Parsed:
    data: Any
    params: dict[str, Any] | None = None
    unwrapped: bool = False  # MLflow's unified LLM input: predictions are returned unwrapped


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    mime, *rest = [part.strip() for part in value.split(";")]
    options = {k.strip().lower(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in rest if p)}
    return mime.lower(), options


def decode(body: bytes, content_type: str, metadata: Any, schema: Any) -> Parsed:
    mime, options = _media_type(content_type or JSON)
    kind = JSONLINES if mime in JSONLINES_ALIASES else mime
    if kind not in PARAMETERS:
        raise UnsupportedMediaType(value=content_type, allowed=", ".join(INPUT_TYPES))
    _check_parameters(content_type, kind, options)
    try:
        if kind == JSON:
            parsed = scoring_server._parse_json_data(body, metadata, schema)
            return Parsed(parsed.data, parsed.params, parsed.is_unified_llm_input)
        if kind == CSV:
            return Parsed(_csv(body, schema, options.get("header")))
        if kind == PARQUET:
            return Parsed(scoring_server.parse_parquet_input(io.BytesIO(body)))
        return Parsed(_jsonlines(body, metadata, schema))
    except MlflowException as error:
        raise BadRequest.from_mlflow(error, MAX_DETAIL) from None


def _check_parameters(content_type: str, kind: str, options: dict[str, str]) -> None:
    allowed = PARAMETERS[kind]
    unknown = sorted(set(options) - allowed)
    if unknown:
        listed = ", ".join(f"{kind}; {p}=..." for p in sorted(allowed)) or f"{kind} without parameters"
        raise UnsupportedMediaType(
            value=content_type, allowed=f"{listed} (unrecognized parameter: {', '.join(unknown)})"
        )
    if options.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(value=content_type, allowed=f"{', '.join(INPUT_TYPES)} in UTF-8")


def csv_has_header(first: list[str], names: list[str] | None, header: str | None) -> bool:
    """The rule for a CSV body's first line.

    1. ``Content-Type: text/csv; header=present`` or ``header=absent`` decides outright.
    2. With a signature that names its columns, the first line is a header exactly when one of
       its fields is a signature column name. Columns are then matched by name: any order, extra
       columns ignored (as MLflow does). Without a header, the fields are the signature's columns
       in signature order, and a row of another width is refused with 400.
    3. Otherwise (no signature, or a tensor signature), the first line is always the header, as
       in MLflow's ``parse_csv_input``: send ``header=absent`` for a CSV without one.
    """
    if header is not None:
        if header.lower() not in ("present", "absent"):
            raise BadRequest(
                detail=f"text/csv header={header!r} is not valid. Allowed: present, absent. "
                "Send header=present when the first line names the columns."
            )
        return header.lower() == "present"
    if names:
        return bool({f.strip() for f in first} & set(names))
    return True


def _csv(body: bytes, schema: Any, header: str | None) -> Any:
    import pandas as pd

    text = _utf8(body)
    names = schema.input_names() if schema is not None and schema.has_input_names() else None
    first = next(csv.reader(io.StringIO(text)), [])
    if not text.strip():
        raise BadRequest(detail="The CSV body is empty. Send at least one row (and a header line, or header=absent).")
    if csv_has_header(first, names, header):
        return scoring_server.parse_csv_input(io.StringIO(text), schema=schema if names else None)
    if names and len(first) != len(names):
        raise BadRequest(
            detail=f"The CSV rows have {len(first)} fields; the signature has {len(names)} columns "
            f"({', '.join(names)}). Send a header line naming the columns, or rows of exactly "
            "those columns in that order."
        )
    dtypes = dict(zip(names, schema.pandas_types())) if names else None
    try:
        return pd.read_csv(io.StringIO(text), header=None, names=names, dtype=dtypes)
    except Exception as error:
        raise BadRequest(
            detail=f"The CSV body could not be parsed: {error}. Send a CSV written by pandas.DataFrame.to_csv()."
        ) from None


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
    """The output type the client prefers (RFC 9110 12.5.1): each type gets the q-value of the
    most specific range that matches it; the highest q wins, then the range listed first, then
    JSON. ``q=0`` means "not acceptable"."""
    if not accept or not accept.strip():
        return JSON
    ranges = []
    for position, part in enumerate(p for p in accept.split(",") if p.strip()):
        mime, options = _media_type(part)
        try:
            quality = float(options.get("q", "1"))
        except ValueError:
            quality = 1.0
        ranges.append((mime, quality, position))
    best: tuple[float, int, int, str] | None = None
    for preference, output in enumerate(OUTPUT_TYPES):
        match = _most_specific(output, ranges)
        if match is None or match[1] <= 0:
            continue
        key = (match[1], -match[2], -preference, output)
        best = key if best is None or key > best else best
    if best is None:
        raise NotAcceptable(value=accept, allowed=", ".join(OUTPUT_TYPES))
    return best[3]


def _most_specific(output: str, ranges: list[tuple[str, float, int]]) -> tuple[str, float, int] | None:
    names = JSONLINES_ALIASES if output == JSONLINES else {output}
    family = output.split("/")[0] + "/*"
    for wanted in (names, {family}, {"*/*"}):
        for candidate in ranges:
            if candidate[0] in wanted:
                return candidate
    return None


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

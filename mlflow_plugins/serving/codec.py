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

Batches: for a model whose signature names columns of plain types, a ``dataframe_split``,
``dataframe_records``, ``instances`` (records) or ``inputs`` (columns) body with nothing else in
it, or a plain CSV body with a header, is kept as rows (:func:`rows`), so that the requests of a
batch with the same columns and the same value types are decoded together by MLflow's own parser
for that form (:func:`frame`): building a frame and casting it to the signature cost per column,
not per row (5 ms for a 1-row, 30-column request here, 90% of its decode).

Outputs: JSON ``{"predictions": ...}`` as MLflow writes it, or ``text/csv`` or
``application/jsonlines`` when ``Accept`` prefers them (q-values honoured, RFC 9110 12.5.1).
"""

from __future__ import annotations

import csv
import io
import json
import weakref
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from mlflow.types.schema import DataType
from mlflow.utils.proto_json_utils import (
    cast_df_types_according_to_schema,
    dataframe_from_parsed_json,
    parse_tf_serving_input,
)

from mlflow_plugins.errors import BadRequest, NotAcceptable, UnsupportedMediaType

JSON, CSV, JSONLINES = "application/json", "text/csv", "application/jsonlines"
PARQUET = "application/vnd.apache.parquet"
JSONLINES_ALIASES = {JSONLINES, "application/jsonl", "application/x-jsonlines"}
INPUT_TYPES = [JSON, CSV, JSONLINES, PARQUET]
OUTPUT_TYPES = [JSON, CSV, JSONLINES]
PARAMETERS = {JSON: {"charset"}, CSV: {"charset", "header"}, JSONLINES: {"charset"}, PARQUET: set()}
MAX_DETAIL = 2000
# Signature types whose cast (``astype``) is value by value, so casting the rows of many requests
# together gives each value what casting its own request's rows would.
ROW_TYPES = frozenset(
    {DataType.double, DataType.float, DataType.long, DataType.integer, DataType.boolean, DataType.string}
)


@dataclass
class Parsed:
    data: Any
    params: dict[str, Any] | None = None
    unwrapped: bool = False  # MLflow's unified LLM input: predictions are returned unwrapped


@dataclass(frozen=True)
class Rows:
    """A body kept as rows, to be decoded with others of its batch. ``orient``: ``split``
    (``dataframe_split``: a list of lists), ``records`` (``dataframe_records``: a list of dicts),
    ``instances`` (a list of dicts), ``inputs`` (a dict of column lists) or ``csv`` (the text after
    the header line). ``key``: bodies with equal keys can be decoded together. ``count``: rows."""

    orient: str
    columns: tuple[str, ...]
    data: Any
    key: tuple
    count: int


def rows_schema(metadata: Any, schema: Any) -> bool:
    """Whether a model's requests may be kept as rows: a signature that names its columns, each of
    a type in ``ROW_TYPES``, not derived from type hints (MLflow skips parsing for those)."""
    from_hints = getattr(metadata, "_is_signature_from_type_hint", None)
    if schema is None or not schema.has_input_names() or (from_hints is not None and from_hints()):
        return False
    return all(isinstance(t, DataType) and t in ROW_TYPES for t in schema.input_types())


def rows(body: bytes, content_type: str, names: list[str]) -> Rows | None:
    """The body as :class:`Rows`, or ``None`` when MLflow's parser must read it alone (``params``,
    ``index``, extra keys, ragged rows, a CSV with quotes, blank lines, rows of another width than
    the header, columns outside the signature or no header, anything unusual; errors included).

    The key holds the columns in order and, for JSON, the set of per-row value-type tuples:
    requests are combined only when pandas or numpy see the same types in each column, so they
    infer the same dtypes for the combined rows as for each request's own. CSV columns are all
    named in the signature, so ``read_csv`` converts each value to its column's declared type.
    """
    mime, options = _media_type(content_type or JSON)
    if mime == CSV and _utf8_charset(options) and set(options) <= {"charset", "header"}:
        return _csv_rows_of(body, names, options.get("header"))
    payload = _plain_json(body, mime, options)
    return _json_rows(payload) if payload is not None else None


def read(body: bytes, content_type: str, metadata: Any, schema: Any, names: list[str]) -> Rows | Parsed:
    """What a worker makes of a body: :func:`rows` where the body can be kept as rows (``names``:
    the signature's columns, empty when the model's requests are never kept), otherwise
    :func:`decode`. A JSON body is parsed once either way."""
    mime, options = _media_type(content_type or JSON)
    payload = _plain_json(body, mime, options) if names else None
    if payload is not None:
        kept = _json_rows(payload)
        return kept if kept is not None else decode(body, content_type, metadata, schema, payload)
    kept = rows(body, content_type, names) if names and mime == CSV else None
    return kept if kept is not None else decode(body, content_type, metadata, schema)


def _utf8_charset(options: dict[str, str]) -> bool:
    return options.get("charset", "utf-8").lower() in ("utf-8", "utf8")


def _plain_json(body: bytes, mime: str, options: dict[str, str]) -> Any:
    """The parsed body of a JSON request with no parameter but a UTF-8 charset; else ``None``."""
    if mime != JSON or set(options) - {"charset"} or not _utf8_charset(options):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _json_rows(payload: Any) -> Rows | None:
    if not isinstance(payload, dict) or len(payload) != 1:
        return None
    ((form, value),) = payload.items()
    if form == "dataframe_split":
        if not isinstance(value, dict) or set(value) != {"columns", "data"}:
            return None
        columns, data = value["columns"], value["data"]
        if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)):
            return None
        return _list_rows("split", tuple(columns), data)
    if form in ("dataframe_records", "instances"):
        return _dict_rows("records" if form == "dataframe_records" else "instances", value)
    if form == "inputs" and isinstance(value, dict) and value:
        columns = tuple(value)
        lists = list(value.values())
        if not all(isinstance(v, list) for v in lists) or not lists[0] or {len(v) for v in lists} != {len(lists[0])}:
            return None
        types = tuple(frozenset(map(type, v)) for v in lists)
        return Rows("inputs", columns, value, ("inputs", columns, types), len(lists[0]))
    return None


def _list_rows(orient: str, columns: tuple[str, ...], data: Any) -> Rows | None:
    if not (isinstance(data, list) and data) or len(set(columns)) != len(columns):
        return None
    width = len(columns)
    if not all(isinstance(row, list) and len(row) == width for row in data):
        return None
    types = frozenset(tuple(map(type, row)) for row in data)
    return Rows(orient, columns, data, (orient, columns, types), len(data))


def _dict_rows(orient: str, data: Any) -> Rows | None:
    if not (isinstance(data, list) and data and all(isinstance(r, dict) for r in data)):
        return None
    columns = tuple(data[0])
    if not all(tuple(r) == columns for r in data):
        return None
    types = frozenset(tuple(map(type, r.values())) for r in data)
    return Rows(orient, columns, data, (orient, columns, types), len(data))


def _csv_rows_of(body: bytes, names: list[str], header: str | None) -> Rows | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    first, newline, rest = text.partition("\n")
    columns = tuple(first.rstrip("\r").split(","))
    if not newline or '"' in text or not set(columns) <= set(names) or len(set(columns)) != len(columns):
        return None
    if header not in (None, "present"):  # header=absent: the first line is data (and bad values refused alone)
        return None
    rest = rest if rest.endswith("\n") else rest + "\n"
    lines = rest.split("\n")[:-1]
    width = first.count(",")  # no quotes, so every comma separates two fields
    if not lines or any(not line.strip() or line.count(",") != width for line in lines):
        return None  # a row of another width: pandas would read the combined text differently
    return Rows("csv", columns, rest, ("csv", first), len(lines))


def frame(group: list[Rows], schema: Any) -> Any:
    """The rows of ``group`` (equal keys) in order, decoded as MLflow's scoring server decodes a
    request of that form (a DataFrame, or for ``instances`` and ``inputs`` a dict of arrays); an
    input error is a 400 (as in :func:`decode`)."""
    first = group[0]
    try:
        if first.orient == "csv":
            text = first.key[1] + "\n" + "".join(kept.data for kept in group)
            return scoring_server.parse_csv_input(io.StringIO(text), schema=schema)
        if first.orient == "inputs":
            columns = {c: [v for kept in group for v in kept.data[c]] for c in first.columns}
            return parse_tf_serving_input({"inputs": columns}, schema=schema)
        data = first.data if len(group) == 1 else [row for kept in group for row in kept.data]
        if first.orient == "instances":
            return parse_tf_serving_input({"instances": data}, schema=schema)
        if (
            first.orient == "split"
            and schema is not None
            and _signature(schema).doubles == first.columns
            and _numbers_only(first)
            and (numeric := _numeric_frame(data, first.columns)) is not None
        ):
            return numeric
        decoded = {"columns": list(first.columns), "data": data} if first.orient == "split" else data
        built = dataframe_from_parsed_json(decoded, pandas_orient=first.orient)
        return built if _cast_changes_nothing(built, schema) else cast_df_types_according_to_schema(built, schema)
    except MlflowException as error:
        raise BadRequest.from_mlflow(error, MAX_DETAIL) from None


def _cast_changes_nothing(built: Any, schema: Any) -> bool:
    """Whether MLflow's cast would leave every column as it is: each signature column present has
    the signature's dtype already (a string column may be pandas' string dtype, which the cast
    skips). Then skipping it gives the same frame without its per-column copies (4 ms of the 5 ms
    decode of a 1-row, 30-column request)."""
    import pandas as pd

    actual = dict(zip(built.columns, built.dtypes))
    for name, wanted in _signature(schema).pandas_types:
        found = actual.get(name)
        if found is not None and found != wanted and not (wanted is object and isinstance(found, pd.StringDtype)):
            return False
    return True


@dataclass(frozen=True)
class _Signature:
    """What decoding reads off a signature on every request, worked out once."""

    pandas_types: list[tuple[str, Any]]  # (column, the pandas dtype MLflow's cast gives it)
    doubles: tuple[str, ...] | None  # the columns, when every one is a required double


_SIGNATURES: dict[int, _Signature] = {}


def _signature(schema: Any) -> _Signature:
    """Per schema object (a served model keeps one); the entry goes when the schema does. Asking
    each column type for its pandas dtype on every request cost more than building a one-row frame."""
    found = _SIGNATURES.get(id(schema))
    if found is None:
        names, types = schema.input_names(), schema.input_types()
        plain = not schema.is_tensor_spec() and not schema.optional_input_names()
        doubles = tuple(names) if plain and all(t == DataType.double for t in types) else None
        found = _Signature([(n, t.to_pandas()) for n, t in zip(names, types)], doubles)
        _SIGNATURES[id(schema)] = found
        weakref.finalize(schema, _SIGNATURES.pop, id(schema), None)
    return found


def _numbers_only(rows: Rows) -> bool:
    """Every value of the rows (the group shares the key, so its types) is a JSON number."""
    return all(kind is int or kind is float for row in rows.key[2] for kind in row)


def _numeric_frame(data: list[list[Any]], columns: tuple[str, ...]) -> Any | None:
    """``dataframe_split`` rows of JSON numbers under a signature of doubles (the columns in its
    order): MLflow builds a column at a time, int64 or float64 by what each holds, then casts each to
    float64; one float64 array gives the same frame. A one-row, 30-column request decoded alone
    took 0.5 to 0.7 ms the first way, mostly pandas' per-column work. None for an integer beyond
    a double's range: MLflow's cast refuses it with its own message (a 400), so it goes that way."""
    import numpy as np
    import pandas as pd

    try:
        values = np.array(data, dtype=np.float64)
    except OverflowError:
        return None
    return pd.DataFrame(values, columns=list(columns))


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    mime, *rest = [part.strip() for part in value.split(";")]
    options = {k.strip().lower(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in rest if p)}
    return mime.lower(), options


def decode(body: bytes, content_type: str, metadata: Any, schema: Any, payload: Any = None) -> Parsed:
    """The body as MLflow's scoring server reads it (``payload``: a JSON body already parsed)."""
    mime, options = _media_type(content_type or JSON)
    kind = JSONLINES if mime in JSONLINES_ALIASES else mime
    if kind not in PARAMETERS:
        raise UnsupportedMediaType(value=content_type, allowed=", ".join(INPUT_TYPES))
    _check_parameters(content_type, kind, options)
    try:
        if kind == JSON:
            parsed = scoring_server._parse_json_data(body if payload is None else payload, metadata, schema)
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

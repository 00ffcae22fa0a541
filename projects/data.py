"""Training data: loading, checking, splitting, and the scenario generator's command.

``data`` is one of:

* a CSV or Parquet file, local or ``s3://bucket/key`` (read through boto3, so ``AWS_ENDPOINT_URL``
  and profiles apply);
* a glob of such local files (``weeks/week_0[0-3].parquet``), concatenated in name order;
* ``sklearn:NAME`` for a dataset scikit-learn ships: breast_cancer, wine, iris, diabetes,
  california_housing (downloaded once by scikit-learn), digits. Its label column is ``target``;
* ``scenario:truck-delay?weeks=0-3`` for weeks of the seeded drift scenario, generated in memory
  (options: ``weeks`` as ``A-B`` or ``N``, ``total`` weeks of the scenario (8), ``rows`` per week
  (2000), ``seed`` (7), ``new_route_week``, ``drift_from`` (0)). Its label column is ``delayed``.

The target (label column) defaults to the source's own: ``target`` for ``sklearn:NAME``,
``delayed`` for the scenario and for files that have a ``delayed`` column (the scenario's weeks
written by the command below). Any other file needs its target named.

Bad data fails with the column and the reason: a missing target, a target with nulls, an
all-null or constant feature column.

    python -m projects.data truck-delay --weeks 8 --out data/truck   # week_00.parquet ...
"""

from __future__ import annotations

import argparse
import glob
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DEFAULT = "scenario:truck-delay?weeks=0-3"  # the entry points' default data: the first four weeks
SKLEARN = {
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
    "diabetes": "load_diabetes",
    "digits": "load_digits",
    "california_housing": "fetch_california_housing",
}
SKLEARN_TARGET = "target"  # the label column of every sklearn:NAME frame


class DataError(ValueError):
    """Unusable data: names the column (or source), the reason and what to do."""

    def __init__(self, column: str, reason: str, fix: str) -> None:
        super().__init__(f"column {column!r}: {reason}. {fix}")
        self.column, self.reason = column, reason


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame
    target: str
    source: str

    @property
    def features(self) -> pd.DataFrame:
        return self.frame.drop(columns=[self.target])

    @property
    def label(self) -> pd.Series:
        return self.frame[self.target]


def load(data: str, target: str = "") -> Dataset:
    """The data at ``data``, checked against ``target`` (empty: the source's own label)."""
    frame = read(data)
    target = target or default_target(data, frame)
    check(frame, target, data)
    return Dataset(frame, target, data)


def default_target(data: str, frame: pd.DataFrame) -> str:
    """The label column the source itself names: ``target`` for ``sklearn:NAME``, ``delayed`` for
    the scenario (generated, or its weeks written to files)."""
    from projects import scenario

    if data.startswith("sklearn:"):
        return SKLEARN_TARGET
    if data.startswith("scenario:") or scenario.TARGET in frame.columns:
        return scenario.TARGET
    raise DataError(
        "(target)",
        f"{data} does not say which column is the label (columns: {', '.join(map(str, frame.columns))})",
        "Pass -P target=<label column>.",
    )


def read(data: str) -> pd.DataFrame:
    if data.startswith("sklearn:"):
        return _sklearn(data[len("sklearn:") :])
    if data.startswith("scenario:"):
        return _scenario(data)
    if data.startswith("s3://"):
        return _parse(_s3_bytes(data), data)
    paths = sorted(glob.glob(data)) if any(c in data for c in "*?[") else [data]
    if not paths or not all(Path(p).is_file() for p in paths):
        raise DataError(
            "(source)",
            f"{data!r} matches no file",
            "Pass a CSV or Parquet path, a glob, s3://bucket/key or sklearn:NAME.",
        )
    return pd.concat([_parse(Path(p).read_bytes(), p) for p in paths], ignore_index=True)


def _parse(raw: bytes, name: str) -> pd.DataFrame:
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(io.BytesIO(raw))
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return pd.read_csv(io.BytesIO(raw), compression="gzip" if name.endswith(".gz") else None)
    raise DataError("(source)", f"{name!r} is neither CSV nor Parquet", "Use a .csv, .csv.gz or .parquet file.")


def _s3_bytes(uri: str) -> bytes:
    import boto3

    bucket, _, key = uri[len("s3://") :].partition("/")
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def _sklearn(name: str) -> pd.DataFrame:
    import sklearn.datasets

    if name not in SKLEARN:
        raise DataError(
            "(source)",
            f"sklearn:{name} is not a known dataset",
            f"Use one of: {', '.join('sklearn:' + n for n in SKLEARN)}.",
        )
    bunch = getattr(sklearn.datasets, SKLEARN[name])(as_frame=True)
    return bunch.frame.rename(columns={bunch.target.name: SKLEARN_TARGET})


def _scenario(data: str) -> pd.DataFrame:
    from urllib.parse import parse_qsl

    from projects import scenario

    name, _, query = data[len("scenario:") :].partition("?")
    if name != "truck-delay":
        raise DataError("(source)", f"{data!r} names no scenario", "Use scenario:truck-delay?weeks=0-3.")
    options = dict(parse_qsl(query))
    allowed = {"weeks", "total", "rows", "seed", "new_route_week", "drift_from"}
    if set(options) - allowed:
        raise DataError(
            "(source)",
            f"{data!r} has unknown options {sorted(set(options) - allowed)}",
            f"Use only {', '.join(sorted(allowed))}.",
        )
    try:
        first, _, last = options.get("weeks", "0-3").partition("-")
        indexes = range(int(first), int(last or first) + 1)
        total, rows, seed = int(options.get("total", 8)), int(options.get("rows", 2000)), int(options.get("seed", 7))
        new_route = int(options["new_route_week"]) if "new_route_week" in options else None
        drift_from = int(options.get("drift_from", 0))
    except ValueError:
        raise DataError("(source)", f"{data!r} has a non-numeric option", "Use numbers: weeks=0-3&rows=2000.") from None
    return pd.concat([scenario.week(i, total, rows, seed, new_route, drift_from) for i in indexes], ignore_index=True)


def check(frame: pd.DataFrame, target: str, source: str = "data") -> None:
    """Raise :class:`DataError` for a missing or null target and all-null or constant features."""
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise DataError(
            target, f"the target is not a column of {source} (columns: {columns})", "Pass -P target=<label column>."
        )
    if frame[target].isna().any():
        raise DataError(
            target,
            f"the target has {int(frame[target].isna().sum())} null values",
            "Drop or fill the unlabeled rows first.",
        )
    if len(frame) < 10:
        raise DataError("(rows)", f"{source} has {len(frame)} rows", "Train on at least 10 labeled rows.")
    for column in frame.columns.drop(target):
        values = frame[column]
        if values.isna().all():
            raise DataError(column, "every value is null", "Drop the column or fill it.")
        if values.nunique(dropna=True) <= 1:
            raise DataError(
                column, f"it is constant ({values.dropna().iloc[0]})", "Drop the column: it carries no signal."
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m projects.data", description="data generators")
    commands = parser.add_subparsers(dest="command", required=True)
    truck = commands.add_parser("truck-delay", help="the drifting truck-delivery scenario, one file per week")
    truck.add_argument("--weeks", type=int, default=8)
    truck.add_argument("--rows-per-week", type=int, default=2000)
    truck.add_argument("--seed", type=int, default=7)
    truck.add_argument(
        "--new-route-week",
        type=int,
        default=None,
        help="from this week on, a 'mountain' route type appears (unseen by earlier weeks)",
    )
    truck.add_argument("--drift-from", type=int, default=0, help="weeks before this one do not drift")
    truck.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    truck.add_argument("--out", required=True, help="directory for week_00.parquet, week_01.parquet, ...")
    args = parser.parse_args(argv)
    from projects import scenario

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for index in range(args.weeks):
        frame = scenario.week(index, args.weeks, args.rows_per_week, args.seed, args.new_route_week, args.drift_from)
        path = out / f"week_{index:02d}.{args.format}"
        frame.to_parquet(path, index=False) if args.format == "parquet" else frame.to_csv(path, index=False)
    print(f"wrote {args.weeks} weeks of {args.rows_per_week} deliveries to {out}")


if __name__ == "__main__":
    main()

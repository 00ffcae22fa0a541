"""How an entry point ends on a user's mistake (bad data, a model version that does not exist or has
no baseline, an update its model cannot take, a window that cannot be compared with the baseline):
the error's one-line message on stderr, exit status 1, no traceback.
Anything else is a defect and keeps its traceback."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from mlflow_plugins import secrets
from mlflow_plugins.errors import OpsError
from projects import baseline, capture, data, drift, families, tracking

USER_ERRORS = (
    OpsError,  # batch_score: a bad config, a missing model, a failed job (the message says why)
    data.DataError,
    families.IncrementalError,
    tracking.NoSuchVersion,
    baseline.MissingBaseline,
    drift.DriftError,
    capture.CaptureError,
)


def main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], Any], argv: list[str] | None) -> Any:
    """``run`` on the parsed ``argv``; a user error exits as ``<prog>: error: <message>``."""
    secrets.install_log_redaction()  # a step of the registry hooks' drift loop logs into the controller's output
    args = parser.parse_args(argv)
    try:
        return run(args)
    except USER_ERRORS as error:
        raise SystemExit(f"{parser.prog}: error: {secrets.redact(str(error))}") from None

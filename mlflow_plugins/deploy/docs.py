"""Rewrite the README's configuration tables from the targets' key tables:
``python -m mlflow_plugins.deploy.docs [README.md]``. Each table sits between
``<!-- NAME -->`` and ``<!-- /NAME -->`` markers."""

from __future__ import annotations

import sys
from pathlib import Path

from mlflow_plugins.deploy.batch.config import KEYS as BATCH_KEYS
from mlflow_plugins.deploy.common.keys import markdown_table
from mlflow_plugins.deploy.ecs.config import KEYS as ECS_KEYS
from mlflow_plugins.deploy.sagemaker.config import KEYS as SAGEMAKER_KEYS

TABLES = {"config-keys": SAGEMAKER_KEYS, "ecs-keys": ECS_KEYS, "batch-keys": BATCH_KEYS}


def tables() -> dict[str, str]:
    return {marker: markdown_table(keys) for marker, keys in TABLES.items()}


def rewrite(text: str) -> str:
    for marker, table in tables().items():
        start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
        if start in text and end in text:
            before, rest = text.split(start, 1)
            text = f"{before}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"
    return text


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(rewrite(path.read_text()))

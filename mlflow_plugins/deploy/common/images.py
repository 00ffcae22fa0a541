"""The serving image: the one a config names, or the suite's default in the account's ECR."""

from __future__ import annotations

from typing import Any

import mlflow_plugins

REPOSITORY = "mlflow-sagemaker-ops"


def image_uri(clients: Any, configured: str | None) -> str:
    if configured:
        return configured
    account = (
        clients.account_id() if hasattr(clients, "account_id") else clients("sts").get_caller_identity()["Account"]
    )
    return f"{account}.dkr.ecr.{clients.region}.amazonaws.com/{REPOSITORY}:{mlflow_plugins.__version__}"

"""A deployment's lineage graph for the page: the same reads as ``mlflow-sagemaker-ops lineage show
--endpoint ARN`` (:mod:`mlflow_plugins.lineage.show`), made by the MLflow server.

The server reads SageMaker with the standard boto3 configuration of its own environment
(``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``); the region is the endpoint ARN's. When
the server has no AWS access, or nothing was mirrored yet, the answer says why and what to run
instead, and the page shows that in place of the graph.
"""

from __future__ import annotations

from typing import Any

from mlflow_plugins.errors import OpsError


def for_endpoint(arn: str | None, deployment: str) -> dict[str, Any]:
    """``{"available": True, "graph": {...}, "text": ...}`` or ``{"available": False, "reason": ...}``."""
    if not arn:
        return {"available": False, "reason": f"deployment {deployment!r} has no endpoint ARN yet (nothing deployed)."}
    try:
        from mlflow_plugins.aws import AwsSettings, make_clients
        from mlflow_plugins.lineage import show

        sagemaker = make_clients(AwsSettings(region=arn.split(":")[3] or None))("sagemaker")
        found = show.graph(sagemaker, show.start_for_endpoint(sagemaker, arn))
    except OpsError as error:
        return {"available": False, "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - no AWS access from the server: said on the page, never a 500
        return {
            "available": False,
            "reason": (
                f"the MLflow server could not read SageMaker lineage ({type(error).__name__}: {error}). Give the "
                f"server AWS access (AWS_PROFILE or credentials, AWS_REGION), or run "
                f"`mlflow-sagemaker-ops lineage show --endpoint {arn}` where AWS is reachable."
            ),
        }
    return {"available": True, "graph": found, "text": show.render(found, "text")}


__all__ = ["for_endpoint"]

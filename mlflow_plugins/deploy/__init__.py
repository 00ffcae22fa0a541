"""Deployment targets behind one contract (:mod:`.contract`): ``sagemaker`` (single-model
endpoints), ``sagemaker-mme`` (models on multi-model endpoints) and ``ecs`` (Fargate services).

The front doors (the MLflow deployment clients in :mod:`mlflow_plugins.clients` and the registry
hooks) use only this module's names: :func:`make_target` and the contract's types.
"""

from __future__ import annotations

from typing import Any

from mlflow_plugins.deploy.common.plan import Change, Plan
from mlflow_plugins.deploy.contract import FAILED, SERVING, Live, Target, converge

KINDS = ("sagemaker", "sagemaker-mme", "ecs")

__all__ = [
    "FAILED",
    "Change",
    "Plan",
    "KINDS",
    "SERVING",
    "Live",
    "Target",
    "converge",
    "local_model_dir",
    "make_target",
    "parse_config",
    "parse_target",
]


def parse_config(kind: str, config: Any, where: str | None = None) -> Any:
    """The typed config of target ``kind``, validated without any AWS call (a policy check)."""
    if kind == "ecs":
        from mlflow_plugins.deploy.ecs import parse as parse_ecs

        return parse_ecs(config)
    from mlflow_plugins.deploy.sagemaker import parse as parse_sagemaker
    from mlflow_plugins.deploy.sagemaker import parse_model_config

    if kind == "sagemaker-mme":
        return parse_model_config(config)
    return parse_sagemaker(config, where) if where else parse_sagemaker(config)


def parse_target(target_uri: str) -> tuple[str | None, str | None]:
    """``sagemaker-ops:/eu-west-1/arn:aws:iam::1:role/x`` -> (region, role)."""
    from urllib.parse import urlparse

    path = urlparse(target_uri).path.strip("/") if ":" in target_uri else ""
    if not path:
        return None, None
    region, _, role = path.partition("/")
    return region or None, role or None


def local_model_dir(model_uri: str) -> str:
    from mlflow_plugins.deploy.common.archives import local_model_dir as local

    return local(model_uri)


def make_target(kind: str, clients: Any, say: Any = None) -> Target:
    """The target of ``kind`` over ``clients`` (an :class:`~mlflow_plugins.aws.AwsClients`)."""
    extra = {"say": say} if say is not None else {}
    if kind == "sagemaker":
        from mlflow_plugins.deploy.sagemaker import SageMakerTarget

        return SageMakerTarget(clients, **extra)
    if kind == "sagemaker-mme":
        from mlflow_plugins.deploy.sagemaker import MultiModelTarget

        return MultiModelTarget(clients, **extra)
    if kind == "ecs":
        from mlflow_plugins.deploy.ecs import EcsTarget

        return EcsTarget(clients, **extra)
    from mlflow_plugins.errors import InvalidValue

    raise InvalidValue(
        name="target",
        value=kind,
        reason="there is no such deployment target",
        allowed=", ".join(KINDS),
        fix="Use one of the targets listed.",
    )

"""The ECS (Fargate) target: :class:`EcsTarget`. Everything else in this package is private to it."""

from mlflow_plugins.deploy.ecs._deployer import RolledBack
from mlflow_plugins.deploy.ecs._target import EcsTarget
from mlflow_plugins.deploy.ecs.config import KEYS, EcsConfig, ecs_help, parse

__all__ = ["KEYS", "EcsConfig", "EcsTarget", "RolledBack", "ecs_help", "parse"]

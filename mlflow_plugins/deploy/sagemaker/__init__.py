"""SageMaker targets: real-time, serverless and asynchronous endpoints (:class:`SageMakerTarget`)
and models on multi-model endpoints (:class:`MultiModelTarget`, plus the endpoint API of
:class:`MultiModelDeployer`). Everything else in this package is private to it."""

from mlflow_plugins.deploy.sagemaker._export import STRATEGY_KEYS
from mlflow_plugins.deploy.sagemaker._mme import LINEAGE_TARGET as MME_KIND
from mlflow_plugins.deploy.sagemaker._mme import MultiModelDeployer
from mlflow_plugins.deploy.sagemaker._requests import deployment_config
from mlflow_plugins.deploy.sagemaker._target import MultiModelTarget, SageMakerTarget, parse_model_config, split_name
from mlflow_plugins.deploy.sagemaker.config import KEYS, SageMakerConfig, parse, sagemaker_help

__all__ = [
    "KEYS",
    "MME_KIND",
    "MultiModelDeployer",
    "MultiModelTarget",
    "SageMakerConfig",
    "STRATEGY_KEYS",
    "SageMakerTarget",
    "deployment_config",
    "parse",
    "parse_model_config",
    "sagemaker_help",
    "split_name",
]

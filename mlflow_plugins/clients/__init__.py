"""The MLflow deployment clients (``mlflow deployments ... -t sagemaker-ops|sagemaker|ecs``): thin
adapters from MLflow's plugin contract to :mod:`mlflow_plugins.deploy`'s targets."""

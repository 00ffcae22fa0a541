"""mlflow-sagemaker-ops: MLflow plugins that take a model from an experiment to production on AWS."""

__version__ = "0.1.0"

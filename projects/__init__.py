"""The MLflow project's code: data, model families, and the train, tune, retrain and evaluate
entry points that ``MLproject`` runs (``mlflow run . -e NAME``)."""

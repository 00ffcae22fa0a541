"""``mlflow-sagemaker-ops serve``: the serving runtime that the container runs."""

from __future__ import annotations

import logging

import click

from mlflow_plugins.errors import OpsError
from mlflow_plugins.serving import settings as serve_settings
from mlflow_plugins.serving.runtime import start


@click.command()
@click.option("--model-dir", help=f"An MLflow model directory [default: {serve_settings.DEFAULT_MODEL_DIR}].")
@click.option("--model-uri", help="ECS mode: fetch the model once at start from s3://..., models:/... or runs:/...")
@click.option(
    "--multi-model",
    is_flag=True,
    default=None,
    help="Serve the SageMaker multi-model contract (also SAGEMAKER_MULTI_MODEL=true).",
)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, help="Port [default: SAGEMAKER_BIND_TO_PORT or 8080; 0 picks a free one].")
@click.option(
    "--workers", type=int, help="Worker processes [default: SAGEMAKER_MODEL_SERVER_WORKERS or the CPU count]."
)
@click.option(
    "--timeout", type=float, help="Seconds one prediction may take [default: SAGEMAKER_MODEL_SERVER_TIMEOUT or 60]."
)
@click.option("--max-payload-mb", type=float, help="Largest request body [default: 6, SageMaker's limit].")
@click.option("--max-models", type=int, help="Multi-model: most models kept loaded per worker [default: 100].")
@click.option(
    "--memory-budget-mb",
    type=float,
    help="Multi-model: memory for loaded models per worker [default: half of available memory].",
)
@click.option("--cache-dir", help="ECS mode: where the fetched model is kept [default: ~/.cache/mlflow-sagemaker-ops].")
def serve(**options: object) -> None:
    """Serve an MLflow model on the SageMaker contract (GET /ping, POST /invocations),
    the multi-model contract (/models...), or in ECS mode from a model URI."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    try:
        settings = serve_settings.resolve(options)
        start(settings, announce=lambda port: click.echo(f"Serving on http://{settings.host}:{port}", err=True))
    except OpsError as error:
        raise click.ClickException(str(error)) from None

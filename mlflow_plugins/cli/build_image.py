"""``mlflow-sagemaker-ops build-image``: build (and push) the serving image for a model."""

from __future__ import annotations

import tempfile

import click

from mlflow_plugins.aws import make_clients
from mlflow_plugins.errors import OpsError
from mlflow_plugins.serving import image


@click.command("build-image")
@click.option("--model-dir", help="The MLflow model whose dependencies the image bakes in.")
@click.option("--model-uri", help="Or a model URI (s3://, models:/, runs:/) to fetch first.")
@click.option("--repository", default="mlflow-sagemaker-ops", show_default=True, help="Image (ECR repository) name.")
@click.option("--context", "context_dir", help="Write the build context here and stop (no Docker needed).")
@click.option("--push", is_flag=True, help="Push to ECR (created if missing) after building.")
def build_image(
    model_dir: str | None, model_uri: str | None, repository: str, context_dir: str | None, push: bool
) -> None:
    """Build the serving image with the model's dependencies baked in (no pip install when a
    container starts); with --push, push it to ECR. Needs a Docker engine unless --context."""
    try:
        if bool(model_dir) == bool(model_uri):
            raise click.UsageError("Pass exactly one of --model-dir and --model-uri.")
        if model_uri:
            from mlflow_plugins.serving.fetch import fetch_model

            model_dir = fetch_model(model_uri)
        out = context_dir or tempfile.mkdtemp(prefix="mlflow-sagemaker-ops-image-")
        context = image.build_context(model_dir, out)
        click.echo(f"Build context: {context.path} (tag {context.tag}, Python {context.python_version})")
        if context_dir:
            return
        docker = image.DockerCli()
        built = image.build(context, repository, docker)
        click.echo(f"Built {built}")
        if push:
            click.echo(f"Pushed {image.push(built, make_clients()('ecr'), docker)}")
    except (OpsError, RuntimeError) as error:
        raise click.ClickException(str(error)) from None

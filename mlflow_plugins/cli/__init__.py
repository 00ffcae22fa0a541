"""The ``mlflow-sagemaker-ops`` command: one subcommand per capability."""

from __future__ import annotations

import click

from mlflow_plugins import __version__
from mlflow_plugins.cli.build_image import build_image
from mlflow_plugins.cli.demo import demo
from mlflow_plugins.cli.hooks import hooks
from mlflow_plugins.cli.lineage import lineage
from mlflow_plugins.cli.sandbox import sandbox
from mlflow_plugins.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlflow-sagemaker-ops")
def cli() -> None:
    """Take MLflow models to production on AWS: SageMaker, multi-model endpoints and ECS."""


cli.add_command(build_image)
cli.add_command(demo)
cli.add_command(hooks)
cli.add_command(lineage)
cli.add_command(sandbox)
cli.add_command(serve)

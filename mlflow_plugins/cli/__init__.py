"""The ``mlflow-sagemaker-ops`` command: one subcommand per capability.

Each subcommand's module is imported only when that subcommand runs (or when ``--help`` lists
them): ``serve`` starts once per serving process and ``hooks run`` once per controller, and
neither should pay for the sandbox's moto or the demo's imports.
"""

from __future__ import annotations

import importlib

import click

from mlflow_plugins import __version__

COMMANDS = {  # name -> (module, attribute)
    "batch-transform": ("mlflow_plugins.cli.batch", "batch_transform"),
    "build-image": ("mlflow_plugins.cli.build_image", "build_image"),
    "demo": ("mlflow_plugins.cli.demo", "demo"),
    "export": ("mlflow_plugins.cli.export", "export"),
    "hooks": ("mlflow_plugins.cli.hooks", "hooks"),
    "lineage": ("mlflow_plugins.cli.lineage", "lineage"),
    "sandbox": ("mlflow_plugins.cli.sandbox", "sandbox"),
    "serve": ("mlflow_plugins.cli.serve", "serve"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlflow-sagemaker-ops")
def cli() -> None:
    """Take MLflow models to production on AWS: SageMaker, multi-model endpoints and ECS."""

"""Infrastructure as code for deployments: a CloudFormation template (exported by each target,
:meth:`mlflow_plugins.deploy.Target.export`) as YAML, or as a Python CDK app of L1 constructs
(:mod:`.cdk`)."""

from mlflow_plugins.iac.cdk import app_files, app_source

__all__ = ["app_files", "app_source"]

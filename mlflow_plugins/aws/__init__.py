"""AWS access: the one boto3 session and client factory (see :mod:`.session`)."""

from mlflow_plugins.aws.session import AwsClients, AwsSettings, make_clients, retry_config

__all__ = ["AwsClients", "AwsSettings", "make_clients", "retry_config"]

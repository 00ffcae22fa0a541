"""The one place where boto3 sessions and clients are made.

Everything comes from standard boto3 configuration: region (``AWS_REGION``, which botocore
itself does not read but the other AWS SDKs and the CLI do, then ``AWS_DEFAULT_REGION`` and
the profile), credentials and profile (``AWS_PROFILE``), the endpoint
URL (``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``, read by botocore itself) and retries
(``AWS_RETRY_MODE``, ``AWS_MAX_ATTEMPTS``, or the profile). Only where the user configured no
retry policy does the suite choose one: botocore's ``standard`` mode with more attempts than
its default, because deployments make long sequences of control-plane calls.

Other modules never call ``boto3.client``: they receive an :class:`AwsClients` (or a client
made by one) as an argument.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import NoRegionError

from mlflow_plugins import __version__
from mlflow_plugins.errors import MissingSetting

__all__ = ["AwsSettings", "AwsClients", "make_clients", "retry_config"]

DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 8
USER_AGENT = f"mlflow-sagemaker-ops/{__version__}"


@dataclass(frozen=True)
class AwsSettings:
    """What a caller may choose; ``None`` means "whatever standard boto3 configuration says"."""

    region: str | None = None
    profile: str | None = None
    assume_role_arn: str | None = None
    role_session_name: str = "mlflow-sagemaker-ops"


def retry_config(session: botocore.session.Session) -> Config:
    """The client config: the user's retry settings if any, else standard mode, 8 attempts."""
    mode = session.get_config_variable("retry_mode")
    attempts = session.get_config_variable("max_attempts")
    retries: dict[str, Any] = {
        "mode": mode or DEFAULT_RETRY_MODE,
        "total_max_attempts": attempts or DEFAULT_MAX_ATTEMPTS,
    }
    return Config(retries=retries, user_agent_extra=USER_AGENT)


class AwsClients:
    """Builds and caches one client per service for one boto3 session.

    Thread-safe: clients are created under a lock (boto3 sessions are not thread-safe, clients
    are).
    """

    def __init__(self, session: boto3.Session, config: Config | None = None) -> None:
        self.session = session
        self.config = config or retry_config(session._session)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None

    @property
    def region(self) -> str:
        region = self.session.region_name
        if not region:
            raise _no_region()
        return region

    def account_id(self) -> str:
        """The caller's account (GetCallerIdentity), asked once per session."""
        if self._account is None:
            self._account = self("sts").get_caller_identity()["Account"]
        return self._account

    def __call__(self, service_name: str) -> Any:
        with self._lock:
            if service_name not in self._clients:
                try:
                    self._clients[service_name] = self.session.client(service_name, config=self.config)
                except NoRegionError:
                    raise _no_region() from None
            return self._clients[service_name]


def make_clients(settings: AwsSettings | None = None) -> AwsClients:
    """An :class:`AwsClients` for ``settings``, assuming the role if one is given."""
    settings = settings or AwsSettings()
    region = settings.region or os.environ.get("AWS_REGION") or None
    session = boto3.Session(profile_name=settings.profile, region_name=region)
    if settings.assume_role_arn:
        session = _assumed_role_session(session, settings)
    return AwsClients(session)


def _assumed_role_session(base: boto3.Session, settings: AwsSettings) -> boto3.Session:
    """A session whose credentials come from ``sts:AssumeRole`` and refresh before expiry."""
    sts = base.client("sts", config=retry_config(base._session))

    def fetch() -> dict[str, str]:
        creds = sts.assume_role(RoleArn=settings.assume_role_arn, RoleSessionName=settings.role_session_name)[
            "Credentials"
        ]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    core = botocore.session.get_session()
    if settings.profile:
        core.set_config_variable("profile", settings.profile)
    # botocore has no public setter for refreshable credentials; this is the attribute that
    # botocore's own credential resolver fills in.
    core._credentials = RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
    )
    return boto3.Session(botocore_session=core, region_name=base.region_name)


def _no_region() -> MissingSetting:
    return MissingSetting(
        name="AWS region",
        allowed="any AWS region name, for example eu-west-1",
        fix="Set AWS_REGION (or AWS_DEFAULT_REGION), a region in your AWS profile, "
        "or region_name in the target config.",
    )

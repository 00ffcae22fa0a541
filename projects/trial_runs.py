"""Writing a tuning trial's nested MLflow run: three calls (create with tags, one batch of params
and metrics, end with status), made as cheap for the tuning process as they can be.

* Against an ``http(s)://`` tracking server, :class:`RestTrialRuns` posts MLflow's REST API
  (``runs/create``, ``runs/log-batch``, ``runs/update``) as JSON over one keep-alive session. It
  takes its credentials, TLS settings, timeout and request headers from MLflow itself (host creds,
  ``MLFLOW_HTTP_REQUEST_TIMEOUT``, the request-header providers), so it reaches the same server
  the same way, without ``MlflowClient``'s protobuf and per-call layers: in ``benchmarks/tuning.py``
  the tuning process's CPU per trial is 1.09x that of Optuna alone with it, 1.16x with the client.
* Any other tracking URI (a local ``sqlite:`` or ``file:`` store, Databricks, an auth plugin or
  SigV4 signing) goes through :class:`ClientTrialRuns`, which is ``MlflowClient``.

Both are safe to call from one writer thread while trials run in others.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import mlflow
import requests
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


class TrialRuns(Protocol):
    def write(
        self,
        experiment_id: str,
        run_name: str,
        started: int,
        ended: int,
        status: str,
        tags: dict[str, str],
        params: dict[str, Any],
        metrics: dict[str, float],
    ) -> str:
        """Create the run, log its params and metrics, end it; its run id."""


class ClientTrialRuns:
    def __init__(self, tracking_uri: str) -> None:
        self.client = mlflow.MlflowClient(tracking_uri)
        # set_terminated() would otherwise fetch each trial's whole run back (GetRun) only to print
        # its URL: a fourth, and the heaviest, call per trial.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"

    def write(self, experiment_id, run_name, started, ended, status, tags, params, metrics) -> str:
        run = self.client.create_run(experiment_id, start_time=started, run_name=run_name, tags=tags)
        run_id = run.info.run_id
        self.client.log_batch(
            run_id,
            params=[Param(k, str(v)) for k, v in params.items()],
            metrics=[Metric(k, v, ended, 0) for k, v in metrics.items()],
        )
        self.client.set_terminated(run_id, status, end_time=ended)
        return run_id


class RestTrialRuns:
    def __init__(self, tracking_uri: str, creds: Any = None) -> None:
        from mlflow.environment_variables import (
            MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
            MLFLOW_HTTP_REQUEST_MAX_RETRIES,
            MLFLOW_HTTP_REQUEST_TIMEOUT,
        )
        from mlflow.tracking.request_header.registry import resolve_request_headers
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.workspace_context import get_request_workspace
        from mlflow.utils.workspace_utils import WORKSPACE_HEADER_NAME

        creds = creds or get_default_host_creds(tracking_uri)
        self.base = f"{creds.host.rstrip('/')}/api/2.0/mlflow/runs/"
        self.timeout = MLFLOW_HTTP_REQUEST_TIMEOUT.get()
        # MLflow's own retry policy for its REST calls: 429 and 5xx, with backoff, POST included.
        retry = Retry(
            total=MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(),
            backoff_factor=MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get(),
            backoff_max=60,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.session.headers.update(resolve_request_headers())
        if workspace := get_request_workspace():
            self.session.headers[WORKSPACE_HEADER_NAME] = workspace
        if creds.username and creds.password:
            self.session.auth = (creds.username, creds.password)
        elif creds.token:
            self.session.headers["Authorization"] = f"Bearer {creds.token}"
        if creds.ignore_tls_verification:
            self.session.verify = False
        elif creds.server_cert_path:
            self.session.verify = creds.server_cert_path
        if creds.client_cert_path:
            self.session.cert = creds.client_cert_path

    def _post(self, call: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.session.post(self.base + call, json=body, timeout=self.timeout)
        if reply.status_code != 200:
            try:
                error = reply.json()
            except ValueError:
                error = {"message": reply.text[:500]}
            raise MlflowException(
                f"POST {self.base}{call} answered {reply.status_code}: "
                f"{error.get('error_code', '')} {error.get('message', '')}".rstrip()
            )
        return reply.json()

    def write(self, experiment_id, run_name, started, ended, status, tags, params, metrics) -> str:
        created = self._post(
            "create",
            {
                "experiment_id": experiment_id,
                "run_name": run_name,
                "start_time": started,
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )
        run_id = created["run"]["info"]["run_id"]
        self._post(
            "log-batch",
            {
                "run_id": run_id,
                "params": [{"key": k, "value": str(v)} for k, v in params.items()],
                "metrics": [{"key": k, "value": v, "timestamp": ended, "step": 0} for k, v in metrics.items()],
            },
        )
        self._post("update", {"run_id": run_id, "status": status, "end_time": ended})
        return run_id


def for_tracking_uri(tracking_uri: str | None = None) -> TrialRuns:
    """:class:`RestTrialRuns` for a plain HTTP(S) tracking server (no request signing, auth plugin
    or Databricks SDK), else :class:`ClientTrialRuns`."""
    from mlflow.utils.credentials import get_default_host_creds

    uri = tracking_uri or mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return ClientTrialRuns(uri)
    creds = get_default_host_creds(uri)
    if creds.aws_sigv4 or creds.auth or creds.use_databricks_sdk or creds.client_secret:
        return ClientTrialRuns(uri)
    return RestTrialRuns(uri, creds)

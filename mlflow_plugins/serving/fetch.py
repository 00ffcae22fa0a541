"""ECS mode: fetch the model once at start from ``s3://``, ``models:/`` or ``runs:/``, cached on disk.

The cache is keyed by what the URI points at now: a ``models:/`` alias or stage is resolved to its
version first (so moving an alias fetches the new version), and an S3 object by its ETag. A fetch
lands in a temporary directory and is renamed into place when complete, so an interrupted fetch is
never mistaken for a model.

S3 reads use the suite's boto3 client factory (region, credentials and ``AWS_ENDPOINT_URL`` from
standard configuration).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from mlflow_plugins.errors import InvalidValue, ResourceNotFound

log = logging.getLogger(__name__)
SCHEMES = ("s3://", "models:/", "runs:/")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlflow-sagemaker-ops" / "models"


def fetch_model(uri: str, cache_dir: str | None = None, s3: object | None = None) -> str:
    """The local directory of the MLflow model at ``uri``, fetching it if the cache lacks it."""
    if not uri.startswith(SCHEMES):
        raise InvalidValue(
            name="--model-uri",
            value=uri,
            reason="the scheme is not supported",
            allowed=", ".join(f"{s}..." for s in SCHEMES),
            fix="Pass an S3 object or prefix, a registered model or a run artifact URI.",
        )
    if uri.startswith("s3://"):
        s3 = s3 or _s3_client()
        identity = f"{uri}@{_s3_etag(s3, uri)}"
    else:
        identity = _resolved_mlflow_uri(uri)
    target = Path(cache_dir or default_cache_dir()) / hashlib.sha256(identity.encode()).hexdigest()[:24]
    model_dir = target / "model"
    if (model_dir / "MLmodel").exists():
        log.info("using the cached model for %s at %s", identity, model_dir)
        return str(model_dir)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".fetch-") as scratch:
        fetched = (
            _fetch_s3(s3, uri, Path(scratch)) if uri.startswith("s3://") else _fetch_mlflow(identity, Path(scratch))
        )
        if not (fetched / "MLmodel").exists():
            raise InvalidValue(
                name="--model-uri",
                value=uri,
                reason="it holds no MLmodel file",
                allowed="a URI of an MLflow model (a directory with MLmodel, or its model.tar.gz)",
                fix="Point --model-uri at the model itself, not its parent folder.",
            )
        os.replace(fetched, model_dir)
    log.info("fetched %s into %s", identity, model_dir)
    return str(model_dir)


def _s3_client() -> object:
    from mlflow_plugins.aws import make_clients

    return make_clients()("s3")


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _s3_etag(s3: object, uri: str) -> str:
    bucket, key = _split(uri)
    if key.endswith((".tar.gz", ".tgz")):
        try:
            return s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        except s3.exceptions.ClientError as error:
            raise ResourceNotFound(
                kind="S3 object", name=uri, fix=f"Check the bucket and key ({error.response['Error']['Code']})."
            ) from None
    listing = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/")
    tags = sorted(o["ETag"] for page in listing for o in page.get("Contents", []))
    if not tags:
        raise ResourceNotFound(kind="S3 prefix", name=uri, fix="Upload the model there first.")
    return hashlib.sha256("".join(tags).encode()).hexdigest()


def _fetch_s3(s3: object, uri: str, scratch: Path) -> Path:
    bucket, key = _split(uri)
    out = scratch / "model"
    if key.endswith((".tar.gz", ".tgz")):
        archive = scratch / "model.tar.gz"
        s3.download_file(bucket, key, str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(out, filter="data")
        return out
    prefix = key.rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            destination = out / item["Key"][len(prefix) :]
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(destination))
    return out


def _resolved_mlflow_uri(uri: str) -> str:
    if not uri.startswith("models:/"):
        return uri
    from mlflow import MlflowClient
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    resolved = get_model_name_and_version(MlflowClient(), uri)
    return "models:/" + "/".join(str(part) for part in resolved)


def _fetch_mlflow(uri: str, scratch: Path) -> Path:
    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(scratch / "download")))
    if local.is_file() and tarfile.is_tarfile(local):
        with tarfile.open(local) as tar:
            tar.extractall(scratch / "model", filter="data")
        return scratch / "model"
    shutil.move(str(local), scratch / "model")
    return scratch / "model"

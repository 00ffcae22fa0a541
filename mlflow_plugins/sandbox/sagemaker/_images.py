"""Container images: the path format CreateModel accepts, and pulling from the sandbox's ECR.

* CreateModel: ``Image`` is checked against the service model (pattern ``[\\S]+``, at most 255
  characters, by :mod:`.._constraints`) and against the formats the API reference names,
  ``registry/repository[:tag]`` and ``registry/repository[@digest]``, read with Docker's image
  reference grammar (github.com/distribution/reference). A path off that grammar, such as
  ``../../etc/passwd``, is refused with a ``ValidationException``.
* Pulling: a variant whose image is in the ECR of the sandbox's own account (``<account>.dkr.ecr.
  <region>.amazonaws.com/<repository>[:tag|@digest]``) starts only when that repository holds the
  tag (``latest`` when none) or digest; otherwise the endpoint goes ``Failed`` with SageMaker's
  reason. Images in other registries, or in other accounts' ECR, cannot be checked here and are
  taken as present (the sandbox does not run images: it runs the suite's serving runtime).
* The suite's default image, ``<account>.dkr.ecr.<region>.amazonaws.com/mlflow-sagemaker-ops:<version>``
  (what ``build-image`` pushes and the deployment targets use when no image is given), is
  registered in the sandbox's ECR in :data:`SEED_REGIONS` at start and after every reset.
  Register any other image with ECR's own ``PutImage`` (or
  :meth:`~mlflow_plugins.sandbox.control.SandboxControl.register_image`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from moto.ecr.exceptions import ImageNotFoundException, RepositoryNotFoundException
from moto.ecr.models import ecr_backends
from moto.sagemaker.exceptions import ValidationError

SUITE_REPOSITORY = "mlflow-sagemaker-ops"
SEED_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1")
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"

# Docker's reference grammar (distribution/reference, regexp.go), anchored.
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
ECR = re.compile(r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>.+)")


def check_format(image: str, path: str) -> None:
    """Refuse an image path that is not ``registry/repository[:tag]`` or ``[@digest]``."""
    if REFERENCE.fullmatch(image) is None:
        raise ValidationError(
            f"1 validation error detected: Value '{image}' at '{path}' is not a valid image path. SageMaker "
            "supports registry/repository[:tag] and registry/repository[@digest], for example "
            f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{SUITE_REPOSITORY}:1.0 (lower-case repository "
            "path components of letters, digits and . _ -; a tag of at most 128 word characters, . and -)."
        )


def check_model_images(params: dict[str, Any]) -> None:
    """CreateModel's PrimaryContainer and Containers."""
    if (params.get("PrimaryContainer") or {}).get("Image"):
        check_format(params["PrimaryContainer"]["Image"], "primaryContainer.image")
    for index, container in enumerate(params.get("Containers") or []):
        if container.get("Image"):
            check_format(container["Image"], f"containers.{index + 1}.member.image")


def pull_failure(variant: str) -> str:
    """The FailureReason SageMaker gives when a variant's image cannot be pulled."""
    return (
        f"Please make sure all images included in the model for the production variant {variant} exist, "
        "and that the execution role used to create the model has permissions to access them."
    )


def missing_from_ecr(image: str | None, account: str) -> str | None:
    """Why ``image`` cannot be pulled from the sandbox's ECR, or ``None`` when it can (or is not ours to check)."""
    match = ECR.fullmatch(image or "")
    if match is None or match["account"] != account:
        return None
    reference = REFERENCE.fullmatch(match["repo"])
    if reference is None:
        return f"{image} is not a valid image path"
    name, tag, digest = reference["name"], reference["tag"], reference["digest"]
    try:
        repository = ecr_backends[account][match["region"]]._get_repository(name)
        repository._get_image(None if digest else (tag or "latest"), digest)
    except RepositoryNotFoundException:
        return f"the repository {name} does not exist in the registry {account} ({match['region']})"
    except ImageNotFoundException:
        return f"the repository {name} holds no image {('@' + digest) if digest else ':' + (tag or 'latest')}"
    return None


def register(account: str, region: str, repository: str, tag: str) -> str:
    """Put an image manifest into the sandbox's ECR (creating the repository); its digest."""
    backend = ecr_backends[account][region]
    if repository not in backend.repositories:
        backend.create_repository(repository, None, {}, {"scanOnPush": False}, "MUTABLE", [])
    manifest = _manifest(repository, tag)
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    repo = backend.repositories[repository]
    if not any(tag in image.image_tags for image in repo.images):
        backend.put_image(repository, manifest, tag, MANIFEST_TYPE, digest)
    return digest


def seed_suite_image(account: str, version: str) -> None:
    for region in SEED_REGIONS:
        register(account, region, SUITE_REPOSITORY, version)


def suite_image(account: str, region: str, version: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{SUITE_REPOSITORY}:{version}"


def _manifest(repository: str, tag: str) -> str:
    """A Docker image manifest (schema 2) standing for an image the sandbox never runs."""
    config = hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 2,
                "digest": f"sha256:{config}",
            },
            "layers": [],
        },
        sort_keys=True,
    )

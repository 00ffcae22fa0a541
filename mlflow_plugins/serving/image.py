"""Serving images: a build context that bakes a model's dependencies in, built and pushed to ECR.

The context holds the Dockerfile (``docker/Dockerfile``), this suite's packages (installed with
``--no-deps``), the runtime's own requirements pinned to the versions installed here, the model's
``requirements.txt`` exactly as MLflow wrote it, and ``image-manifest.json`` (Python version,
flavors and baked package versions, for compatibility checks). The tag is content-addressed:
the same dependencies give the same tag, so an unchanged image is not rebuilt or pushed.

Docker runs through :class:`Docker` so that the build and push steps can be exercised where no
Docker engine runs (this project's CI has none: image builds are not exercised there).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Protocol

import yaml

import mlflow_plugins
import registry_hooks
from mlflow_plugins.errors import InvalidValue, from_client_error

RUNTIME_PACKAGES = ("httptools", "uvloop", "boto3", "click", "pyyaml")
SUITE_SETUP = """from setuptools import find_packages, setup

setup(
    name="mlflow-sagemaker-ops",
    version="{version}",
    packages=find_packages(),
    package_data={{"mlflow_plugins.serving": ["docker/Dockerfile"]}},
    entry_points={{"console_scripts": ["mlflow-sagemaker-ops=mlflow_plugins.cli:cli"]}},
)
"""


@dataclass(frozen=True)
class BuildContext:
    path: Path
    tag: str
    python_version: str
    manifest: dict[str, Any]


def dockerfile_text() -> str:
    return resources.files("mlflow_plugins.serving").joinpath("docker/Dockerfile").read_text()


def build_context(model_dir: str | Path, out: str | Path) -> BuildContext:
    model_dir, out = Path(model_dir), Path(out)
    requirements = _model_requirements(model_dir)
    python = _python_version(model_dir)
    if out.exists():
        shutil.rmtree(out)
    (out / "suite").mkdir(parents=True)
    (out / "Dockerfile").write_text(dockerfile_text())
    for package in (mlflow_plugins, registry_hooks):
        source = Path(package.__file__).parent
        shutil.copytree(source, out / "suite" / source.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (out / "suite" / "setup.py").write_text(SUITE_SETUP.format(version=mlflow_plugins.__version__))
    runtime = "".join(f"{name}=={metadata.version(name)}\n" for name in RUNTIME_PACKAGES)
    (out / "serving-requirements.txt").write_text(runtime)
    (out / "model-requirements.txt").write_text(requirements)
    manifest = {
        "python": python,
        "suite_version": mlflow_plugins.__version__,
        "flavors": sorted(yaml.safe_load((model_dir / "MLmodel").read_text()).get("flavors", {})),
        "packages": _pins(requirements + "\n" + runtime),
    }
    (out / "image-manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    digest = hashlib.sha256((python + runtime + requirements + mlflow_plugins.__version__).encode()).hexdigest()
    return BuildContext(out, f"py{python.replace('.', '')}-{digest[:12]}", python, manifest)


def _model_requirements(model_dir: Path) -> str:
    if not (model_dir / "MLmodel").exists():
        raise InvalidValue(
            name="model directory",
            value=str(model_dir),
            reason="it has no MLmodel file",
            allowed="an MLflow model directory",
            fix="Pass the directory that MLflow saved the model in.",
        )
    path = model_dir / "requirements.txt"
    if not path.exists():
        raise InvalidValue(
            name="model directory",
            value=str(model_dir),
            reason="it has no requirements.txt",
            allowed="a model saved by MLflow 2 or later",
            fix="Save the model again with mlflow.<flavor>.save_model or log_model.",
        )
    return path.read_text()


def _python_version(model_dir: Path) -> str:
    env = model_dir / "python_env.yaml"
    full = str(yaml.safe_load(env.read_text()).get("python", "")) if env.exists() else ""
    parts = full.split(".")
    if len(parts) < 2:
        raise InvalidValue(
            name="python_env.yaml python",
            value=full,
            reason="the model does not say its Python version",
            allowed="a version such as 3.11.7",
            fix="Save the model again with MLflow 2 or later.",
        )
    return ".".join(parts[:2])


def _pins(requirements: str) -> dict[str, str]:
    pins = {}
    for line in requirements.splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower().split("[")[0]] = version.strip()
    return pins


class Docker(Protocol):
    def run(self, args: list[str], stdin: str | None = None) -> None: ...


class DockerCli:
    """The docker command line; raises with docker's own message when a command fails."""

    def run(self, args: list[str], stdin: str | None = None) -> None:
        result = subprocess.run(["docker", *args], input=stdin, text=True, capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"docker {args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def build(context: BuildContext, repository: str, docker: Docker) -> str:
    image = f"{repository}:{context.tag}"
    docker.run(["build", "--build-arg", f"PYTHON_VERSION={context.python_version}", "-t", image, str(context.path)])
    return image


def push(image: str, ecr: Any, docker: Docker) -> str:
    """Push to ECR, creating the repository if needed; returns the pushed image URI."""
    repository, tag = image.rsplit(":", 1)
    try:
        try:
            uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
        except ecr.exceptions.RepositoryNotFoundException:
            uri = ecr.create_repository(repositoryName=repository, imageScanningConfiguration={"scanOnPush": True})[
                "repository"
            ]["repositoryUri"]
        auth = ecr.get_authorization_token()["authorizationData"][0]
    except ecr.exceptions.ClientError as error:
        raise from_client_error(error, fix="Check the ECR permissions of your AWS credentials.") from None
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    docker.run(["login", "--username", user, "--password-stdin", auth["proxyEndpoint"]], stdin=password)
    docker.run(["tag", image, f"{uri}:{tag}"])
    docker.run(["push", f"{uri}:{tag}"])
    return f"{uri}:{tag}"

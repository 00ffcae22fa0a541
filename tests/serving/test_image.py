"""The serving image's build context, the container's command, and build/push via a Docker stand-in.

No Docker engine runs here, so images are never built in these tests: the context is checked,
the container's exact command is run as a local process, and the build and push steps run against
a recording stand-in for the docker command line and the sandbox's ECR.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from mlflow_plugins.serving import image
from tests.serving.conftest import BIN, start_runtime

ROOT = Path(__file__).resolve().parents[2]


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_installs_at_build_time_and_runs_serve():
    steps = instructions((ROOT / "docker" / "Dockerfile").read_text())
    kinds = [kind for kind, _ in steps]
    assert kinds[0] in ("ARG", "FROM") and "FROM" in kinds
    assert kinds.index("RUN") < kinds.index("ENTRYPOINT")
    run = dict(steps)["RUN"]
    assert "model-requirements.txt" in run and "--no-deps /opt/program/suite" in run and "pip check" in run
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["mlflow-sagemaker-ops"]
    assert json.loads(dict(steps)["CMD"]) == ["serve"]
    assert (ROOT / "docker" / "Dockerfile").read_text() == image.dockerfile_text()


def test_the_build_context_pins_the_model_dependencies(sklearn_model, tmp_path):
    context = image.build_context(sklearn_model, tmp_path / "ctx")
    files = {p.name for p in context.path.iterdir()}
    assert files == {"Dockerfile", "suite", "serving-requirements.txt", "model-requirements.txt", "image-manifest.json"}
    assert (context.path / "model-requirements.txt").read_text() == (sklearn_model / "requirements.txt").read_text()
    manifest = json.loads((context.path / "image-manifest.json").read_text())
    assert manifest["python"] == "3.11" and "sklearn" in manifest["flavors"]
    assert manifest["packages"]["mlflow"] and manifest["packages"]["httptools"]
    assert (context.path / "suite" / "mlflow_plugins" / "serving" / "http.py").exists()
    # The suite inside the context installs and exposes the command (as pip would in the image).
    build = subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "whl"),
            str(context.path / "suite"),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    assert list((tmp_path / "whl").glob("mlflow_sagemaker_ops-*.whl"))
    # The same dependencies give the same tag.
    assert image.build_context(sklearn_model, tmp_path / "again").tag == context.tag


def test_the_container_command_runs_as_a_local_process(sklearn_model):
    steps = dict(instructions((ROOT / "docker" / "Dockerfile").read_text()))
    command = json.loads(steps["ENTRYPOINT"]) + json.loads(steps["CMD"])
    assert command == ["mlflow-sagemaker-ops", "serve"]
    # SageMaker passes the port in SAGEMAKER_BIND_TO_PORT; the model directory is the only
    # difference from the container (/opt/ml/model there).
    server = start_runtime("--model-dir", str(sklearn_model), env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    try:
        assert server.wait_ready().json() == {"status": "healthy"}
    finally:
        server.stop()


class RecordingDocker:
    """Stands in for the docker command line where no engine runs: records each command."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, args: list[str], stdin: str | None = None) -> None:
        self.commands.append(shlex.join(args) + (" <stdin>" if stdin else ""))


def test_build_and_push_to_ecr(aws, sklearn_model, tmp_path):
    context = image.build_context(sklearn_model, tmp_path / "ctx")
    docker = RecordingDocker()
    built = image.build(context, "churn-serving", docker)
    pushed = image.push(built, aws("ecr"), docker)
    repository = aws("ecr").describe_repositories(repositoryNames=["churn-serving"])["repositories"][0]
    assert pushed == f"{repository['repositoryUri']}:{context.tag}"
    assert docker.commands[0] == f"build --build-arg PYTHON_VERSION=3.11 -t churn-serving:{context.tag} {context.path}"
    assert docker.commands[1].startswith("login --username AWS --password-stdin ") and docker.commands[1].endswith(
        "<stdin>"
    )
    assert docker.commands[2:] == [f"tag {built} {pushed}", f"push {pushed}"]
    image.push(built, aws("ecr"), docker)  # the repository exists now: no second create
    names = [r["repositoryName"] for r in aws("ecr").describe_repositories()["repositories"]]
    assert names.count("churn-serving") == 1  # besides the suite's own image, seeded by the sandbox


def test_build_image_context_only_needs_no_docker(sklearn_model, tmp_path):
    result = subprocess.run(
        [
            str(BIN / "mlflow-sagemaker-ops"),
            "build-image",
            "--model-dir",
            str(sklearn_model),
            "--context",
            str(tmp_path / "ctx"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Build context:" in result.stdout and (tmp_path / "ctx" / "Dockerfile").exists()
    missing = subprocess.run(
        [str(BIN / "mlflow-sagemaker-ops"), "build-image", "--model-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "has no MLmodel file" in missing.stderr

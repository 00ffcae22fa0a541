"""Can this model run in that image? Checked before a model is added to a multi-model endpoint.

The image is described by a manifest, as ``build-image`` writes it (``image-manifest.json``:
``python``, ``packages`` name -> version). Without one, the manifest describes this environment
(this Python, the installed versions), which is what ``build-image`` bakes in from here. A model
runs when it has the ``python_function`` flavor, the same Python major.minor, and every package of
its ``requirements.txt`` in the image at the same major.minor when the model pins one.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from mlflow_plugins.errors import InvalidValue

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==\s*([^\s;,]+))?")


def this_environment(packages: list[str]) -> dict[str, Any]:
    found = {}
    for name in packages:
        try:
            found[_canonical(name)] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "packages": found}


def requirements(model_dir: str | Path) -> dict[str, str | None]:
    """The model's requirements: canonical name -> pinned version (None when not pinned)."""
    path = Path(model_dir) / "requirements.txt"
    wanted: dict[str, str | None] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.split("#")[0].strip()
        match = _NAME.match(line)
        if line and not line.startswith("-") and match:
            wanted[_canonical(match.group(1))] = match.group(4)
    return wanted


def check(model_dir: str | Path, manifest: dict[str, Any], model_uri: str) -> None:
    """Raise naming the first mismatch between the model and the image."""
    model_dir = Path(model_dir)
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text()) or {}
    pyfunc = (mlmodel.get("flavors") or {}).get("python_function")
    if not pyfunc:
        raise _refuse(
            model_uri,
            "flavor",
            sorted(mlmodel.get("flavors") or {}),
            "python_function",
            "Log the model with a flavor that has python_function (every built-in MLflow flavor does).",
        )
    env_file = model_dir / "python_env.yaml"
    python = (
        str((yaml.safe_load(env_file.read_text()) or {}).get("python", ""))
        if env_file.exists()
        else str(pyfunc.get("python_version", ""))
    )
    if _minor(python) != _minor(manifest["python"]):
        raise _refuse(
            model_uri,
            "Python",
            python or "unknown",
            f"Python {manifest['python']}.x (the image's)",
            "Log the model under the image's Python, or deploy it to its own endpoint.",
        )
    baked = {_canonical(k): v for k, v in manifest["packages"].items()}
    for name, pinned in requirements(model_dir).items():
        if name not in baked:
            raise _refuse(
                model_uri,
                f"package {name}",
                pinned or "any version",
                "the image's packages: " + ", ".join(sorted(baked)),
                "Build an image with it (build-image), or deploy the model to its own endpoint.",
            )
        if pinned and _minor(pinned) != _minor(baked[name]):
            raise _refuse(
                model_uri,
                f"package {name}",
                pinned,
                f"{name} {_minor(baked[name])}.x (the image has {baked[name]})",
                "Retrain or log the model against the image's version, or deploy it to its own endpoint.",
            )


def _refuse(model_uri: str, what: str, value: Any, allowed: str, fix: str) -> InvalidValue:
    return InvalidValue(
        name=f"model {model_uri} {what}",
        value=value,
        reason="the multi-model endpoint's image cannot run it",
        allowed=allowed,
        fix=fix,
    )


def _minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

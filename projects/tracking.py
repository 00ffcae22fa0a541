"""What every entry point logs to MLflow: the model (scikit-learn flavor, with signature and input
example), dataset inputs, data frames as artifacts; and how a ``models:/`` URI is resolved."""

from __future__ import annotations

import pickle
import pickletools
import tempfile
from importlib.metadata import packages_distributions, version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import pandas as pd
from mlflow.models import infer_signature
from sklearn.pipeline import Pipeline

SETTINGS = ("data", "target", "task", "family", "test_size", "seed")
# What MLflow's scikit-learn flavor loads a pipeline saved in the skops format with, whatever the
# pipeline holds (MLflow adds its own pin).
FLAVOR_MODULES = ("pandas", "sklearn", "scipy", "skops")


def log_params(params: dict[str, Any]) -> None:
    """Log the parameters the run does not have yet. ``mlflow run`` logs the entry point's own
    parameters first (shell-quoted when they hold characters like ``?`` or ``&``), and MLflow
    refuses to change a logged parameter, so those keep ``mlflow run``'s values."""
    logged = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    mlflow.log_params({k: v for k, v in params.items() if k not in logged})


def record_settings(**settings: Any) -> None:
    """What a later entry point needs to know about this run (data source, target, task, family,
    split), as ``project.*`` tags: exact values, unlike shell-quoted parameters."""
    mlflow.set_tags({f"project.{k}": str(v) for k, v in settings.items()})


def settings_of(run: Any) -> dict[str, str]:
    """The ``project.*`` settings of a run this project made, with a clear error otherwise."""
    found = {k: run.data.tags.get(f"project.{k}") for k in SETTINGS}
    missing = [k for k in ("data", "target", "task", "family") if not found[k]]
    if missing:
        raise ValueError(
            f"run {run.info.run_id} has no project.{missing[0]} tag: it was not made by this project's "
            "train, tune or retrain. Pass a model version that one of them registered."
        )
    return found


def trusted_types(pipeline: Pipeline) -> list[str]:
    """The types skops does not trust by default in a pipeline this project built itself
    (xgboost's booster, numpy dtypes), so MLflow's skops format can save and load it."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))


def requirements(pipeline: Pipeline) -> list[str]:
    """The model's pip requirements, pinned to this environment: the distribution of every module a
    class in the pipeline's pickle comes from (read with pickletools: nothing is loaded), and what
    the flavor loads it with. Left to itself, MLflow infers them by loading the model in a
    subprocess (about 5 s per logged model) and lists whatever that process imported, optional
    imports included: pytest and rich, from scikit-learn's test helpers, which a serving image
    would then install. tests/project/test_data_and_families.py checks this list against MLflow's."""
    modules = set(FLAVOR_MODULES)
    for opcode, arg, _ in pickletools.genops(pickle.dumps(pipeline, protocol=2)):
        if opcode.name == "GLOBAL":  # protocol 2 names each class as "module qualname"
            modules.add(str(arg).split(" ", 1)[0].split(".", 1)[0])
    owners = packages_distributions()
    dists = set()
    for module in modules - {"mlflow"}:
        found = owners.get(module, [])  # the standard library's modules have none
        dists.update([module] if module in found else found)
    return sorted(f"{dist}=={version(dist)}" for dist in dists)


def log_pipeline(pipeline: Pipeline, features: pd.DataFrame, registered_model: str | None = None) -> Any:
    """Log ``pipeline`` as the run's ``model`` (registered when ``registered_model`` is set)."""
    import mlflow.sklearn

    example = features.head(5)
    signature = infer_signature(example, pipeline.predict(example))
    return mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature,
        input_example=example,
        registered_model_name=registered_model or None,
        skops_trusted_types=trusted_types(pipeline),
        pip_requirements=requirements(pipeline),
    )


def log_dataset(frame: pd.DataFrame, source: str, target: str, name: str, context: str, **tags: str) -> None:
    """Log ``frame`` as a dataset input. A file or S3 source is recorded as such; a generated one
    (``scenario:``, ``sklearn:``) or a glob as a code source carrying the exact ``data`` string."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    generated = source.startswith(("scenario:", "sklearn:")) or any(c in source for c in "*?[")
    origin: Any = CodeDatasetSource(tags={"project.data": source}) if generated else source
    dataset = mlflow.data.from_pandas(frame, source=origin, targets=target, name=name)
    mlflow.log_input(dataset, context=context, tags=tags or None)


def log_frame(frame: pd.DataFrame, artifact_path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_path).name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(artifact_path).parent))


def load_frame(run_id: str, artifact_path: str) -> pd.DataFrame:
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path)
    return pd.read_parquet(local)


class NoSuchVersion(LookupError):
    """A registry URI that names no model version (an empty stage, an unset alias)."""


def resolve(model_uri: str) -> Any:
    """The registered ModelVersion of ``models:/name/N``, ``models:/name@alias`` or
    ``models:/name/Stage``, with a message naming the URI when it resolves to nothing."""
    client = mlflow.MlflowClient()
    if not model_uri.startswith("models:/"):
        raise ValueError(
            f"model {model_uri!r} is not a registry URI. Pass models:/name/version, "
            "models:/name@alias or models:/name/Stage."
        )
    path = model_uri[len("models:/") :]
    if "@" in path:
        name, alias = path.rsplit("@", 1)
        if alias not in client.get_registered_model(name).aliases:
            raise NoSuchVersion(
                f"model {model_uri!r}: alias {alias!r} of {name!r} is not set. Set it, or pass a version number."
            )
        return client.get_model_version_by_alias(name, alias)
    name, _, ref = path.rpartition("/")
    if ref.isdigit():
        return client.get_model_version(name, ref)
    found = client.get_latest_versions(name, stages=[ref])
    if not found:
        raise NoSuchVersion(
            f"model {model_uri!r}: registered model {name!r} has no version in stage {ref!r}. "
            "Transition a version there first, or pass a version number or alias."
        )
    return found[0]

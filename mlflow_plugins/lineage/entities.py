"""The mapping from MLflow to SageMaker ML Lineage Tracking (the README has it as a table).

| MLflow | lineage entity | type |
|---|---|---|
| experiment | Context | ``MLflowExperiment`` |
| registered model | Context | ``MLflowRegisteredModel`` |
| run | Action | ``ModelTraining`` (source: the run's page; code version and params as properties) |
| dataset input of a run | Artifact | ``DataSet`` (source: the dataset's source, keyed by its digest) |
| model version | Artifact | ``Model`` (source: ``models:/name/version``) |
| deployment | Action | ``ModelDeployment`` (source: the endpoint or service ARN; its S3 archive as a property) |
| batch transform job | Action | ``BatchTransform`` (source: the job ARN), between a ``DataSet`` for its input and one for its output |

Associations, as SageMaker's own lineage uses them (source → destination): a DataSet
``ContributedTo`` the run; the run ``Produced`` the Model; the run is ``AssociatedWith`` its
experiment and the Model with its registered model; a parent Model is ``DerivedFrom``-linked to
the retrained one (AWS: "the destination is a modification of the source"); the Model ``ContributedTo`` a
deployment, which is ``AssociatedWith`` the endpoint's own
Context (the one SageMaker creates for every endpoint). For a batch transform job, the Model and
the input DataSet are ``ContributedTo`` the job's Action, which ``Produced`` the output DataSet.

Each entity's name comes from its identity (tracking server and MLflow id), so a sync finds what an
earlier one wrote by name: no state is kept anywhere else.

No credential is written (:mod:`mlflow_plugins.secrets`): the tracking server's URI and every
source URI are stripped of user-info and credential query parameters before they become an
identity (so a rotated password names the same entities), a ``SourceUri`` or a property; params
and other values whose names or values look like secrets are left out, and ``mlflow.withheld``
counts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlflow_plugins import secrets
from mlflow_plugins.lineage import limits

RUN_STATUS = {
    "FINISHED": "Completed",
    "FAILED": "Failed",
    "RUNNING": "InProgress",
    "KILLED": "Stopped",
    "SCHEDULED": "InProgress",
}


@dataclass(frozen=True)
class Entity:
    kind: str  # Artifact, Action or Context
    type: str
    label: str
    identity: str
    uri: str
    values: dict[str, str] = field(default_factory=dict)
    status: str | None = None  # Actions
    source_id: str | None = None  # Artifacts: the SourceTypes value; Actions and Contexts: SourceId

    @property
    def name(self) -> str:
        return limits.entity_name(self.label, self.identity)

    def source(self) -> dict[str, Any]:
        uri, _ = limits.source_uri(secrets.strip_uri(self.uri))
        source: dict[str, Any] = {"SourceUri": uri}
        if self.kind == "Artifact" and self.source_id:
            source["SourceTypes"] = [{"SourceIdType": "Custom", "Value": limits.fit(self.source_id, 256)}]
        elif self.source_id:
            source.update(SourceType="MLflow", SourceId=limits.fit(self.source_id, 256))
        return source

    def properties(self) -> dict[str, str]:
        _, kept = limits.source_uri(secrets.strip_uri(self.uri))
        values, withheld = secrets.public({**kept, **self.values})
        if withheld:
            values["mlflow.withheld"] = str(withheld)  # how many values that look like secrets were left out
        return limits.properties(self.kind, values, pinned=("source_uri", "mlflow.kind", "mlflow.withheld"))


def server(tracking_uri: str) -> str:
    """The tracking server as identities and properties name it: no credentials, no trailing slash."""
    return secrets.strip_uri(tracking_uri).rstrip("/")


def experiment(tracking: str, experiment: Any) -> Entity:
    tracking = server(tracking)
    return Entity(
        "Context",
        "MLflowExperiment",
        f"exp-{experiment.name}",
        f"{tracking}|experiment|{experiment.experiment_id}",
        f"{tracking}/#/experiments/{experiment.experiment_id}",
        {"mlflow.kind": "experiment", "name": experiment.name, "experiment_id": experiment.experiment_id},
        source_id=experiment.experiment_id,
    )


def registered_model(tracking: str, name: str) -> Entity:
    tracking = server(tracking)
    return Entity(
        "Context",
        "MLflowRegisteredModel",
        f"rm-{name}",
        f"{tracking}|registered-model|{name}",
        f"{tracking}/#/models/{name}",
        {"mlflow.kind": "registered_model", "name": name},
        source_id=name,
    )


def run(tracking: str, run: Any) -> Entity:
    tracking = server(tracking)
    tags = run.data.tags
    values = {
        "mlflow.kind": "run",
        "run_id": run.info.run_id,
        "run_name": run.info.run_name or "",
        "code_version": tags.get("mlflow.source.git.commit", ""),
        "source_name": tags.get("mlflow.source.name", ""),
        "entry_point": tags.get("mlflow.project.entryPoint", ""),
        "user": run.info.user_id or "",
    }
    values.update({f"param.{k}": v for k, v in run.data.params.items()})
    return Entity(
        "Action",
        "ModelTraining",
        f"run-{run.info.run_name or run.info.run_id}",
        f"{tracking}|run|{run.info.run_id}",
        f"{tracking}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}",
        values,
        status=RUN_STATUS.get(run.info.status, "Unknown"),
        source_id=run.info.run_id,
    )


def dataset(dataset_input: Any) -> Entity:
    data = dataset_input.dataset
    try:
        source = json.loads(data.source)
    except (TypeError, ValueError):
        source = {}
    found = source.get("uri") or source.get("url") or source.get("path") or data.source or data.name
    uri = secrets.strip_uri(str(found))
    context = next((t.value for t in dataset_input.tags if t.key == "mlflow.data.context"), "")
    return Entity(
        "Artifact",
        "DataSet",
        f"data-{data.name}",
        f"dataset|{data.digest}|{uri}",
        str(uri),
        {
            "mlflow.kind": "dataset",
            "name": data.name,
            "digest": data.digest,
            "source_type": data.source_type,
            "context": context,
        },
        source_id=f"mlflow-digest:{data.digest}",
    )


def model_version(tracking: str, version: Any) -> Entity:
    tracking = server(tracking)
    return Entity(
        "Artifact",
        "Model",
        f"mv-{version.name}-{version.version}",
        f"{tracking}|model-version|{version.name}|{version.version}",
        f"models:/{version.name}/{version.version}",
        {
            "mlflow.kind": "model_version",
            "registered_model": version.name,
            "version": str(version.version),
            "run_id": version.run_id or "",
            "source": version.source or "",
            "tracking_uri": tracking,
        },
        source_id=f"{version.name}/{version.version}",
    )


def deployment(resource_arn: str, version_entity: Entity, target: str, archive: str | None = None) -> Entity:
    name = resource_arn.split("/")[-1]
    return Entity(
        "Action",
        "ModelDeployment",
        f"deploy-{name}",
        f"deployment|{resource_arn}|{version_entity.identity}",
        resource_arn,
        {
            "mlflow.kind": "deployment",
            "target": target,
            "resource_arn": resource_arn,
            "model": version_entity.uri,
            "s3_archive": archive or "",
        },
        status="Completed",
        source_id=name,
    )


def transform(job_arn: str, version_entity: Entity, input_uri: str, output_uri: str) -> Entity:
    name = job_arn.split("/")[-1]
    return Entity(
        "Action",
        "BatchTransform",
        f"transform-{name}",
        f"transform|{job_arn}",
        job_arn,
        {
            "mlflow.kind": "batch_transform",
            "model": version_entity.uri,
            "input": secrets.strip_uri(input_uri),
            "output": secrets.strip_uri(output_uri),
        },
        status="Completed",
        source_id=name,
    )


def s3_data(uri: str, role: str) -> Entity:
    """A batch job's input or output location as a DataSet Artifact, keyed by its URI."""
    clean = secrets.strip_uri(uri)
    return Entity(
        "Artifact",
        "DataSet",
        f"{role}-{clean.rstrip('/').split('/')[-1] or 'data'}",
        f"s3-data|{clean}",
        clean,
        {"mlflow.kind": f"batch_{role}"},
        source_id=f"s3:{clean}",
    )

"""Mirror a registered model's versions (their runs, datasets, parents and deployments) into
SageMaker ML Lineage Tracking. See :mod:`.entities` for the mapping and :mod:`.writer` for why a
sync is idempotent and resumable.

Deployments come from the version's status tags that the registry hooks write
(``deploy.<name>.status`` IN_SERVICE with ``deploy.<name>.arn``), and from the deployment targets
themselves, which call :meth:`LineageSync.record_deployment` after a deploy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow_plugins.lineage import entities
from mlflow_plugins.lineage.entities import Entity
from mlflow_plugins.lineage.writer import LineageWriter

SERVICE_CONTEXT = "ECSService"  # ECS has no lineage context of its own: the suite makes one per service


@dataclass
class Synced:
    versions: list[str] = field(default_factory=list)
    arns: dict[str, str] = field(default_factory=dict)  # entity name -> ARN


class LineageSync:
    def __init__(self, sagemaker: Any, mlflow_client: Any = None, tracking_uri: str | None = None) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = tracking_uri or mlflow.get_tracking_uri()
        self.tracking = entities.server(uri)  # identities: no credentials (a rotated password changes nothing)
        self.client = mlflow_client or MlflowClient(uri)
        self.writer = LineageWriter(sagemaker)
        self.sagemaker = sagemaker
        self.result = Synced()
        self._edges: set[tuple[str, str, str]] = set()
        self._versions: dict[str, str] = {}  # model version identity -> Artifact ARN, synced in this run
        self._contexts: dict[str, str | None] = {}  # endpoint or service ARN -> its Context's ARN

    def _ensure(self, entity: Entity, update: bool = True) -> str:
        """Each entity is read (and written if need be) once per sync."""
        if entity.name not in self.result.arns:
            self.result.arns[entity.name] = self.writer.ensure(entity, update)
        return self.result.arns[entity.name]

    def _associate(self, source: str, destination: str, kind: str) -> None:
        if (source, destination, kind) not in self._edges:
            self.writer.associate(source, destination, kind)
            self._edges.add((source, destination, kind))

    def sync_model(self, name: str, version: str | None = None) -> Synced:
        versions = (
            [version]
            if version is not None
            else sorted((v.version for v in self.client.search_model_versions(f"name='{name}'")), key=int)
        )
        for each in versions:
            self.sync_version(name, str(each))
        return self.result

    def sync_version(self, name: str, version: str, deployed: tuple[str, str, str | None] | None = None) -> str:
        """The model version's Artifact ARN, with its whole upstream chain and its deployments;
        ``deployed`` is (resource ARN, target, S3 archive) of a deploy that just happened."""
        mv = self.client.get_model_version(name, version)
        model = entities.model_version(self.tracking, mv)
        if model.identity in self._versions and deployed is None:
            return self._versions[model.identity]
        model_arn = self._versions[model.identity] = self._ensure(model)
        self._associate(model_arn, self._ensure(entities.registered_model(self.tracking, name)), "AssociatedWith")
        if mv.run_id:
            run = self.client.get_run(mv.run_id)
            run_arn = self._ensure(entities.run(self.tracking, run))
            experiment = self.client.get_experiment(run.info.experiment_id)
            self._associate(run_arn, self._ensure(entities.experiment(self.tracking, experiment)), "AssociatedWith")
            self._associate(run_arn, model_arn, "Produced")
            for dataset_input in run.inputs.dataset_inputs if run.inputs else []:
                self._associate(self._ensure(entities.dataset(dataset_input)), run_arn, "ContributedTo")
            parent_name = run.data.tags.get("parent.registered_model")
            parent_version = run.data.tags.get("parent.version")
            if parent_name and parent_version:
                parent_arn = self.sync_version(parent_name, parent_version)
                # AWS: the destination is a modification of the source
                self._associate(parent_arn, model_arn, "DerivedFrom")
        if deployed:  # first: the status tags may already name this deployment, by its ARN only
            arn, target, archive = deployed
            self.record_deployment(arn, model, model_arn, target, archive)
        for arn, target, archive in _deployments(mv):
            self.record_deployment(arn, model, model_arn, target, archive, recorded=True)
        self.result.versions.append(f"{name}/{version}")
        return model_arn

    def record_deployment(
        self, resource_arn: str, model: Entity, model_arn: str, target: str, archive: str | None, recorded: bool = False
    ) -> str:
        """A deployment Action: the Model ContributedTo it; it is AssociatedWith the endpoint's
        own Context (SageMaker makes one per endpoint; for an ECS service the suite makes it).

        ``recorded``: found in the version's status tags, which name only the ARN. The Action the
        deploy itself wrote (with its target kind and archive) is then kept as it is, and only
        made when missing."""
        action_arn = self._ensure(entities.deployment(resource_arn, model, target, archive), update=not recorded)
        self._associate(model_arn, action_arn, "ContributedTo")
        context_arn = self._resource_context(resource_arn)
        if context_arn is not None:
            self._associate(action_arn, context_arn, "AssociatedWith")
        return action_arn

    def record_transform(self, name: str, version: str, job_arn: str, input_uri: str, output_uri: str) -> str:
        """A batch transform job's Action: the model version and the input ContributedTo it; it
        Produced the output."""
        model_arn = self.sync_version(name, version)
        model = entities.model_version(self.tracking, self.client.get_model_version(name, version))
        action_arn = self._ensure(entities.transform(job_arn, model, input_uri, output_uri))
        self._associate(model_arn, action_arn, "ContributedTo")
        self._associate(self._ensure(entities.s3_data(input_uri, "input")), action_arn, "ContributedTo")
        self._associate(action_arn, self._ensure(entities.s3_data(output_uri, "output")), "Produced")
        return action_arn

    def _resource_context(self, resource_arn: str) -> str | None:
        if resource_arn not in self._contexts:
            self._contexts[resource_arn] = self._find_context(resource_arn)
        return self._contexts[resource_arn]

    def _find_context(self, resource_arn: str) -> str | None:
        found = self.sagemaker.list_contexts(SourceUri=resource_arn)["ContextSummaries"]
        if found:
            return found[0]["ContextArn"]
        if ":ecs:" in resource_arn:
            return self._ensure(
                Entity(
                    "Context",
                    SERVICE_CONTEXT,
                    f"ecs-{resource_arn.split('/')[-1]}",
                    f"ecs-service|{resource_arn}",
                    resource_arn,
                    {"mlflow.kind": "ecs_service"},
                )
            )
        return None  # an endpoint SageMaker has not (yet) given a context


def _deployments(mv: Any) -> list[tuple[str, str, str | None]]:
    tags = mv.tags or {}
    found = []
    for key, value in tags.items():
        if key.startswith("deploy.") and key.endswith(".status") and value == "IN_SERVICE":
            arn = tags.get(key[: -len(".status")] + ".arn")
            if arn:
                found.append((arn, "ecs" if ":ecs:" in arn else "sagemaker", None))
    return found

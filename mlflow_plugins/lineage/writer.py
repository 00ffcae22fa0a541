"""Idempotent writes of lineage entities and associations, with a count of the calls they took.

``ensure`` describes an entity by name and creates it only when it is missing, or updates its
properties only when they differ; ``associate`` lists the pair's associations and adds the edge
only when it is missing. So a second sync creates nothing, an unchanged re-sync only reads, and
a sync cut short anywhere is finished by the next one (names are derived from identities).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mlflow_plugins.lineage.entities import Entity

WRITES = ("Create", "Update", "Add", "Delete")


class LineageWriter:
    def __init__(self, sagemaker: Any) -> None:
        self.sagemaker = sagemaker
        self.calls: Counter = Counter()
        sagemaker.meta.events.register("before-call.sagemaker", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def close(self) -> None:
        self.sagemaker.meta.events.unregister("before-call.sagemaker", self._count)

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith(WRITES))

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if not op.startswith(WRITES))

    def ensure(self, entity: Entity, update: bool = True) -> str:
        """The entity's ARN, creating it when missing; ``update=False`` leaves an existing one as it is."""
        kind, sm = entity.kind, self.sagemaker
        wanted = entity.properties()
        live = self.describe(entity)
        if live is None:
            request: dict[str, Any] = {
                f"{kind}Name": entity.name,
                "Source": entity.source(),
                f"{kind}Type": entity.type,
                "Properties": wanted,
            }
            if entity.status is not None:
                request["Status"] = entity.status
            return getattr(sm, f"create_{kind.lower()}")(**request)[f"{kind}Arn"]
        if not update:
            return live[f"{kind}Arn"]
        current = live.get("Properties") or {}
        changed_status = entity.status is not None and live.get("Status") != entity.status
        if current != wanted or changed_status:
            key = "ArtifactArn" if kind == "Artifact" else f"{kind}Name"
            update: dict[str, Any] = {key: live[key] if kind == "Artifact" else entity.name, "Properties": wanted}
            gone = sorted(set(current) - set(wanted))
            if gone:
                update["PropertiesToRemove"] = gone
            if changed_status:
                update["Status"] = entity.status
            getattr(sm, f"update_{kind.lower()}")(**update)
        return live[f"{kind}Arn"]

    def describe(self, entity: Entity) -> dict[str, Any] | None:
        """The live entity, or None. Actions and Contexts are described by name; an Artifact's
        ARN is an id AWS assigns, and DescribeArtifact takes only the ARN, so it is found by its
        source URI and type (ListArtifacts' filters) and then its name."""
        sm, kind = self.sagemaker, entity.kind
        if kind == "Artifact":
            source = entity.source()["SourceUri"]
            for page in sm.get_paginator("list_artifacts").paginate(SourceUri=source, ArtifactType=entity.type):
                for summary in page["ArtifactSummaries"]:
                    if summary.get("ArtifactName") == entity.name:
                        return sm.describe_artifact(ArtifactArn=summary["ArtifactArn"])
            return None
        try:
            return getattr(sm, f"describe_{kind.lower()}")(**{f"{kind}Name": entity.name})
        except sm.exceptions.ResourceNotFound:
            return None

    def associate(self, source: str, destination: str, kind: str) -> None:
        found = self.sagemaker.list_associations(SourceArn=source, DestinationArn=destination)["AssociationSummaries"]
        if not any(a.get("AssociationType") == kind for a in found):
            self.sagemaker.add_association(SourceArn=source, DestinationArn=destination, AssociationType=kind)

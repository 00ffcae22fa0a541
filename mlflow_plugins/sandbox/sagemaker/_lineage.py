"""SageMaker ML Lineage Tracking entities: Artifacts, Actions, Contexts and their Associations.

Follows the API reference (CreateArtifact, DescribeAction, ListContexts, AddAssociation, ...).
The three entity kinds differ only in field names (``ArtifactArn`` / ``ActionArn`` /
``ContextArn``, ...) and a few members, so one :class:`Entity` serves all three.

Names are unique per entity type in an account and Region, as botocore's documentation of
``ArtifactName``, ``ActionName`` and ``ContextName`` says: a second Create with a taken name is a
``ValidationException`` naming the entity that holds it; an UpdateArtifact that renames onto a taken
name is the ``ConflictException`` UpdateArtifact declares. Artifacts without a name are unconstrained.

Where the sandbox chooses and AWS's reference is silent:
* AddAssociation of a pair that already exists succeeds and changes nothing.
* Deleting an entity also deletes its associations.
* Both ends of an association must be lineage entities of this sandbox.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.sagemaker.exceptions import ConflictException, ResourceNotFound, ValidationError
from moto.sagemaker.utils import arn_formatter

from mlflow_plugins.sandbox.sagemaker._endpoint import utcnow

KINDS = ("Artifact", "Action", "Context")
MAX_PROPERTIES = 30
_ARN_KIND = {"Artifact": "artifact", "Action": "action", "Context": "context"}
_artifact_counter = itertools.count()


@dataclass
class Entity:
    kind: str  # Artifact | Action | Context (the LineageType)
    arn: str
    name: str | None
    source: dict[str, Any]
    subtype: str  # ArtifactType | ActionType | ContextType
    description: str | None = None
    status: str | None = None  # Actions only
    properties: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    created: datetime = field(default_factory=utcnow)
    modified: datetime = field(default_factory=utcnow)

    def describe(self) -> dict[str, Any]:
        out = self.summary()
        out["Properties"] = dict(self.properties)
        for key, value in (("Description", self.description), ("MetadataProperties", self.metadata)):
            if value:
                out[key] = copy.deepcopy(value)
        user = {"UserProfileName": "sandbox"}
        out["CreatedBy"] = out["LastModifiedBy"] = user
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f"{self.kind}Arn": self.arn,
            "Source": copy.deepcopy(self.source),
            f"{self.kind}Type": self.subtype,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        }
        if self.name:
            out[f"{self.kind}Name"] = self.name
        if self.status:
            out["Status"] = self.status
        return out


@dataclass
class Association:
    source: Entity
    destination: Entity
    type: str
    created: datetime = field(default_factory=utcnow)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "SourceArn": self.source.arn,
            "DestinationArn": self.destination.arn,
            "SourceType": self.source.subtype,
            "DestinationType": self.destination.subtype,
            "AssociationType": self.type,
            "CreationTime": self.created,
            "CreatedBy": {"UserProfileName": "sandbox"},
        }
        for key, entity in (("SourceName", self.source), ("DestinationName", self.destination)):
            if entity.name:
                out[key] = entity.name
        return out


class LineageStore:
    """The lineage entities of one account and region."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region
        self.entities: dict[str, Entity] = {}
        self.associations: dict[tuple[str, str], Association] = {}

    def create(self, kind: str, name: str | None, source: dict[str, Any], subtype: str, **fields: Any) -> Entity:
        _check_properties(fields.get("properties") or {})
        if kind == "Artifact":
            taken = self.named("Artifact", name)
            if taken is not None:
                raise ValidationError(
                    f'Cannot create already existing artifact "{taken.arn}": the name {name!r} is '
                    "taken (artifact names are unique in an account and Region). Describe or "
                    "update that artifact, or choose another name."
                )
            arn = self._arn(kind, _artifact_id(self.account, source))
        else:
            arn = self._arn(kind, name or "")
            if arn in self.entities:
                raise ValidationError(f'Cannot create already existing {kind.lower()} "{arn}".')
        entity = Entity(
            kind,
            arn,
            name,
            copy.deepcopy(source),
            subtype,
            **{k: copy.deepcopy(v) for k, v in fields.items() if v is not None},
        )
        self.entities[arn] = entity
        return entity

    def get(self, kind: str, key: str) -> Entity:
        """By ARN, or by name for Actions and Contexts."""
        arn = key if key.startswith("arn:") else self._arn(kind, key)
        entity = self.entities.get(arn)
        if entity is None or entity.kind != kind:
            raise ResourceNotFound(f"{kind} {key} does not exist.")
        return entity

    def named(self, kind: str, name: str | None) -> Entity | None:
        """The entity of ``kind`` called ``name`` (``None`` for no name, or none so called)."""
        if not name:
            return None
        return next((e for e in self.entities.values() if e.kind == kind and e.name == name), None)

    def update(
        self, entity: Entity, properties: dict[str, str] | None, remove: list[str] | None, **fields: Any
    ) -> Entity:
        taken = self.named(entity.kind, fields.get("name"))
        if taken is not None and taken is not entity:
            raise ConflictException(
                f"Cannot rename {entity.arn} to {fields['name']!r}: {taken.arn} has that name "
                "(artifact names are unique in an account and Region). Choose another name."
            )
        merged = {**entity.properties, **(properties or {})}
        for key in remove or []:
            merged.pop(key, None)
        _check_properties(merged)
        entity.properties = merged
        for key, value in fields.items():
            if value is not None:
                setattr(entity, key, value)
        entity.modified = utcnow()
        return entity

    def delete(self, entity: Entity) -> None:
        self.entities.pop(entity.arn, None)
        for key in [k for k in self.associations if entity.arn in k]:
            del self.associations[key]

    def find(
        self,
        kind: str,
        source_uri: str | None = None,
        subtype: str | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
    ) -> list[Entity]:
        found = [e for e in self.entities.values() if e.kind == kind]
        if source_uri is not None:
            found = [e for e in found if e.source.get("SourceUri") == source_uri]
        if subtype is not None:
            found = [e for e in found if e.subtype == subtype]
        if after is not None:
            found = [e for e in found if e.created > after]
        if before is not None:
            found = [e for e in found if e.created < before]
        return found

    def associate(self, source_arn: str, destination_arn: str, kind: str) -> Association:
        source, destination = self._endpoint(source_arn), self._endpoint(destination_arn)
        key = (source.arn, destination.arn)
        if key not in self.associations:
            self.associations[key] = Association(source, destination, kind)
        return self.associations[key]

    def disassociate(self, source_arn: str, destination_arn: str) -> None:
        if self.associations.pop((source_arn, destination_arn), None) is None:
            raise ResourceNotFound(f"Association from {source_arn} to {destination_arn} does not exist.")

    def _endpoint(self, arn: str) -> Entity:
        entity = self.entities.get(arn)
        if entity is None:
            raise ResourceNotFound(f"Lineage entity {arn} does not exist.")
        return entity

    def _arn(self, kind: str, name: str) -> str:
        return arn_formatter(_ARN_KIND[kind], name, self.account, self.region)


def _artifact_id(account: str, source: dict[str, Any]) -> str:
    """Artifact ARNs end in a 32-hex-digit id, as on AWS."""
    seed = f"{account}:{source.get('SourceUri')}:{next(_artifact_counter)}:{utcnow().isoformat()}"
    return hashlib.md5(seed.encode()).hexdigest()


def _check_properties(properties: dict[str, str]) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise ValidationError(
            f"1 validation error detected: Value at 'properties' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_PROPERTIES}"
        )


def store_for(backend: Any) -> LineageStore:
    """The lineage store of a moto SageMaker backend (created on first use, wiped by reset)."""
    store = backend.__dict__.get("_sandbox_lineage")
    if store is None:
        store = backend.__dict__["_sandbox_lineage"] = LineageStore(backend.account_id, backend.region_name)
    return store

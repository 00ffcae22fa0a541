"""The ML Lineage Tracking operations, absent from moto, as request handlers.

Create/Describe/Update/Delete/List for Artifacts, Actions and Contexts share one shape with
different field names, so the handlers are made per kind by small factories.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, BaseResponse

from mlflow_plugins.sandbox.sagemaker._handlers import backend_of, page, request, state
from mlflow_plugins.sandbox.sagemaker._lineage import LineageStore, store_for
from mlflow_plugins.sandbox.sagemaker._lineage_query import query

Handler = Callable[[BaseResponse], ActionResult]


def _store(response: BaseResponse) -> LineageStore:
    return store_for(backend_of(response))


def _creator(kind: str) -> Handler:
    def handler(response: BaseResponse) -> ActionResult:
        params = request(response, f"Create{kind}")
        with state().lock:
            entity = _store(response).create(
                kind,
                params.get(f"{kind}Name"),
                params["Source"],
                params[f"{kind}Type"],
                description=params.get("Description"),
                status=params.get("Status"),
                properties=params.get("Properties"),
                metadata=params.get("MetadataProperties"),
                tags=params.get("Tags"),
            )
        return ActionResult({f"{kind}Arn": entity.arn})

    return handler


def _key(kind: str, params: dict[str, Any]) -> str:
    return params.get(f"{kind}Arn") or params[f"{kind}Name"]


def _describer(kind: str) -> Handler:
    def handler(response: BaseResponse) -> ActionResult:
        params = request(response, f"Describe{kind}")
        with state().lock:
            return ActionResult(_store(response).get(kind, _key(kind, params)).describe())

    return handler


def _updater(kind: str) -> Handler:
    def handler(response: BaseResponse) -> ActionResult:
        params = request(response, f"Update{kind}")
        with state().lock:
            store = _store(response)
            entity = store.get(kind, _key(kind, params))
            fields = {"description": params.get("Description"), "status": params.get("Status")}
            if kind == "Artifact":
                fields = {"name": params.get("ArtifactName")}
            store.update(entity, params.get("Properties"), params.get("PropertiesToRemove"), **fields)
        return ActionResult({f"{kind}Arn": entity.arn})

    return handler


def _deleter(kind: str) -> Handler:
    def handler(response: BaseResponse) -> ActionResult:
        params = request(response, f"Delete{kind}")
        with state().lock:
            store = _store(response)
            if kind == "Artifact" and "ArtifactArn" not in params:
                uri = (params.get("Source") or {}).get("SourceUri")
                matches = store.find("Artifact", source_uri=uri)
                entity = matches[0] if matches else store.get(kind, f"source {uri}")
            else:
                entity = store.get(kind, _key(kind, params))
            store.delete(entity)
        return ActionResult({f"{kind}Arn": entity.arn})

    return handler


def _lister(kind: str) -> Handler:
    def handler(response: BaseResponse) -> ActionResult:
        params = request(response, f"List{kind}s")
        with state().lock:
            found = _store(response).find(
                kind,
                source_uri=params.get("SourceUri"),
                subtype=params.get(f"{kind}Type"),
                after=params.get("CreatedAfter"),
                before=params.get("CreatedBefore"),
            )
        by_name = params.get("SortBy") == "Name"
        found.sort(
            key=(lambda e: e.name or "") if by_name else (lambda e: e.created),
            reverse=params.get("SortOrder", "Descending") == "Descending",
        )
        chunk, token = page(found, params)
        out: dict[str, Any] = {f"{kind}Summaries": [e.summary() for e in chunk]}
        if token:
            out["NextToken"] = token
        return ActionResult(out)

    return handler


def add_association(response: BaseResponse) -> ActionResult:
    params = request(response, "AddAssociation")
    with state().lock:
        association = _store(response).associate(
            params["SourceArn"], params["DestinationArn"], params.get("AssociationType", "AssociatedWith")
        )
    return ActionResult({"SourceArn": association.source.arn, "DestinationArn": association.destination.arn})


def delete_association(response: BaseResponse) -> ActionResult:
    params = request(response, "DeleteAssociation")
    with state().lock:
        _store(response).disassociate(params["SourceArn"], params["DestinationArn"])
    return ActionResult({"SourceArn": params["SourceArn"], "DestinationArn": params["DestinationArn"]})


_ASSOCIATION_FILTERS = {
    "SourceArn": lambda a: a.source.arn,
    "DestinationArn": lambda a: a.destination.arn,
    "SourceType": lambda a: a.source.subtype,
    "DestinationType": lambda a: a.destination.subtype,
    "AssociationType": lambda a: a.type,
}


def list_associations(response: BaseResponse) -> ActionResult:
    params = request(response, "ListAssociations")
    with state().lock:
        found = list(_store(response).associations.values())
    for key, read in _ASSOCIATION_FILTERS.items():
        if key in params:
            found = [a for a in found if read(a) == params[key]]
    if "CreatedAfter" in params:
        found = [a for a in found if a.created > params["CreatedAfter"]]
    if "CreatedBefore" in params:
        found = [a for a in found if a.created < params["CreatedBefore"]]
    sort_key = _ASSOCIATION_FILTERS.get(params.get("SortBy", ""), lambda a: a.created)
    found.sort(key=sort_key, reverse=params.get("SortOrder", "Descending") == "Descending")
    chunk, token = page(found, params)
    out: dict[str, Any] = {"AssociationSummaries": [a.summary() for a in chunk]}
    if token:
        out["NextToken"] = token
    return ActionResult(out)


def query_lineage(response: BaseResponse) -> ActionResult:
    params = request(response, "QueryLineage")
    with state().lock:
        return ActionResult(query(_store(response), params))


def _named(kind: str, verb: str, factory: Callable[[str], Handler]) -> Handler:
    handler = factory(kind)
    handler.__name__ = f"{verb}_{kind.lower()}" + ("s" if verb == "list" else "")
    return handler


HANDLERS = [
    _named(kind, verb, factory)
    for kind in ("Artifact", "Action", "Context")
    for verb, factory in (
        ("create", _creator),
        ("describe", _describer),
        ("update", _updater),
        ("delete", _deleter),
        ("list", _lister),
    )
] + [add_association, delete_association, list_associations, query_lineage]

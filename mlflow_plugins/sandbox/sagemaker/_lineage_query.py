"""QueryLineage: walk associations from start ARNs, up (Ascendants), down (Descendants) or both.

Per the API reference: depth counts associations from a start ARN (``MaxDepth``, default 10);
``Filters`` choose which vertices are returned (entity Types, LineageTypes, times, Properties);
with ``IncludeEdges`` the associations walked are returned as well. The start entities
themselves are not returned as vertices (the caller has them), and edges are returned whatever
the filters, since they describe the path.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mlflow_plugins.sandbox.sagemaker._lineage import Association, Entity, LineageStore

DEFAULT_MAX_DEPTH = 10
DEFAULT_MAX_RESULTS = 10


@dataclass
class Walk:
    vertices: list[Entity] = field(default_factory=list)
    edges: list[Association] = field(default_factory=list)


def walk(store: LineageStore, start_arns: list[str], direction: str, max_depth: int) -> Walk:
    """Breadth-first over associations; each vertex and edge once, nearest first."""
    result = Walk()
    seen = set(start_arns)
    seen_edges: set[tuple[str, str]] = set()
    queue = deque((arn, 0) for arn in start_arns)
    while queue:
        arn, depth = queue.popleft()
        if depth >= max_depth:
            continue
        for association, neighbour in _neighbours(store, arn, direction):
            key = (association.source.arn, association.destination.arn)
            if key not in seen_edges:
                seen_edges.add(key)
                result.edges.append(association)
            if neighbour.arn not in seen:
                seen.add(neighbour.arn)
                result.vertices.append(neighbour)
                queue.append((neighbour.arn, depth + 1))
    return result


def _neighbours(store: LineageStore, arn: str, direction: str) -> list[tuple[Association, Entity]]:
    found = []
    for association in store.associations.values():
        if direction in ("Ascendants", "Both") and association.destination.arn == arn:
            found.append((association, association.source))
        if direction in ("Descendants", "Both") and association.source.arn == arn:
            found.append((association, association.destination))
    return found


def matches(entity: Entity, filters: dict[str, Any]) -> bool:
    if filters.get("Types") and entity.subtype not in filters["Types"]:
        return False
    if filters.get("LineageTypes") and entity.kind not in filters["LineageTypes"]:
        return False
    checks = (
        ("CreatedBefore", lambda t: entity.created < t),
        ("CreatedAfter", lambda t: entity.created > t),
        ("ModifiedBefore", lambda t: entity.modified < t),
        ("ModifiedAfter", lambda t: entity.modified > t),
    )
    if any(filters.get(key) is not None and not test(filters[key]) for key, test in checks):
        return False
    wanted = filters.get("Properties") or {}
    return all(entity.properties.get(k) == v for k, v in wanted.items())


def query(store: LineageStore, params: dict[str, Any]) -> dict[str, Any]:
    """The QueryLineage response for already-validated ``params``."""
    start = params.get("StartArns") or []
    for arn in start:
        store._endpoint(arn)  # ResourceNotFound for an unknown start
    found = walk(store, start, params.get("Direction") or "Ascendants", params.get("MaxDepth") or DEFAULT_MAX_DEPTH)
    filters = params.get("Filters") or {}
    vertices = [v for v in found.vertices if matches(v, filters)]
    offset = int(params.get("NextToken") or 0)
    size = params.get("MaxResults") or DEFAULT_MAX_RESULTS
    page = vertices[offset : offset + size]
    out: dict[str, Any] = {
        "Vertices": [{"Arn": v.arn, "Type": v.subtype, "LineageType": v.kind} for v in page],
        "Edges": [],
    }
    if params.get("IncludeEdges"):
        out["Edges"] = [
            {"SourceArn": e.source.arn, "DestinationArn": e.destination.arn, "AssociationType": e.type}
            for e in found.edges
        ]
    if offset + size < len(vertices):
        out["NextToken"] = str(offset + size)
    return out

"""Read lineage back with ``QueryLineage``: from an endpoint's Context or a model version's
Artifact, upstream and downstream, as text, JSON or Graphviz dot.

QueryLineage returns vertices (ARN, type, lineage type) and edges (source, destination,
association type); names come from one Describe per vertex.
"""

from __future__ import annotations

import json
from typing import Any

from mlflow_plugins.errors import ResourceNotFound
from mlflow_plugins.lineage import entities

FORMATS = ("text", "json", "dot")


def start_for_endpoint(sagemaker: Any, endpoint: str) -> str:
    arn = endpoint if endpoint.startswith("arn:") else sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    found = sagemaker.list_contexts(SourceUri=arn)["ContextSummaries"]
    if not found:
        raise ResourceNotFound(
            kind="lineage context of",
            name=endpoint,
            fix="Deploy it with the suite, or run `mlflow-sagemaker-ops lineage sync --model NAME`.",
        )
    return found[0]["ContextArn"]


def start_for_version(sagemaker: Any, tracking: str, name: str, version: str) -> str:
    from mlflow_plugins.lineage.writer import LineageWriter

    probe = entities.Entity(
        "Artifact",
        "Model",
        f"mv-{name}-{version}",
        f"{entities.server(tracking)}|model-version|{name}|{version}",
        f"models:/{name}/{version}",
    )
    writer = LineageWriter(sagemaker)
    try:
        found = writer.describe(probe)
    finally:
        writer.close()
    if found is None:
        raise ResourceNotFound(
            kind="lineage of model version",
            name=f"{name}/{version}",
            fix=f"Run `mlflow-sagemaker-ops lineage sync --model {name} --version {version}` first.",
        )
    return found["ArtifactArn"]


def graph(sagemaker: Any, start: str) -> dict[str, Any]:
    """Every vertex and edge reachable from ``start`` both ways."""
    vertices: dict[str, dict[str, Any]] = {}
    edges: set[tuple[str, str, str]] = set()
    for direction in ("Ascendants", "Descendants"):
        token = None
        while True:
            kwargs: dict[str, Any] = {
                "StartArns": [start],
                "Direction": direction,
                "IncludeEdges": True,
                "MaxDepth": 10,
            }
            if token:
                kwargs["NextToken"] = token
            page = sagemaker.query_lineage(**kwargs)
            for vertex in page.get("Vertices", []):
                vertices[vertex["Arn"]] = vertex
            for edge in page.get("Edges", []):
                edges.add((edge["SourceArn"], edge["DestinationArn"], edge.get("AssociationType", "")))
            token = page.get("NextToken")
            if not token:
                break
    vertices.setdefault(start, {"Arn": start})
    for arn, vertex in vertices.items():
        vertex["Name"] = _name(sagemaker, arn)
    return {"start": start, "vertices": list(vertices.values()), "edges": [list(e) for e in sorted(edges)]}


def _name(sagemaker: Any, arn: str) -> str:
    kind = arn.split(":")[5].split("/")[0]
    if kind == "artifact":
        found = sagemaker.describe_artifact(ArtifactArn=arn)
    elif kind in ("action", "context"):
        found = getattr(sagemaker, f"describe_{kind}")(**{f"{kind.title()}Name": arn.split("/")[-1]})
    else:
        return arn.split("/")[-1]
    return found.get("Source", {}).get("SourceUri") or arn


def render(found: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(found, indent=2, default=str)
    names = {
        v["Arn"]: f"{v.get('Type') or v.get('LineageType') or ''}: {v['Name']}".strip(": ") for v in found["vertices"]
    }
    if fmt == "dot":
        lines = ["digraph lineage {", "  rankdir=LR;"]
        lines += [f'  "{arn}" [label={json.dumps(label)}];' for arn, label in names.items()]
        lines += [f'  "{s}" -> "{d}" [label="{kind}"];' for s, d, kind in found["edges"]]
        return "\n".join(lines + ["}"])
    lines = [f"start: {names[found['start']]}"]
    lines += [f"{names.get(s, s)}  --{kind}-->  {names.get(d, d)}" for s, d, kind in found["edges"]]
    return "\n".join(lines)


__all__ = ["FORMATS", "graph", "render", "start_for_endpoint", "start_for_version"]

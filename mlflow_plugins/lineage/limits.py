"""AWS's limits on lineage entities, read from botocore's SageMaker service model (the API
reference in machine form), and values made to fit them: never rejected by AWS.

* Names (Artifact, Action, Context): up to 120 characters of ``[a-zA-Z0-9](-*[a-zA-Z0-9])*``.
  A name is a readable label, cut to fit, and a hash of the entity's identity, so it is unique,
  stable across syncs, and the same whatever the label's length.
* Source URIs: up to 2048 characters. A longer one is cut and ends with ``#sha256=<hex>``; the
  full value is kept in the ``source_uri`` property when it fits there.
* Properties: up to 30 entries; keys up to 2500 characters, values up to 2500 (4096 for
  Artifacts). A longer value is cut and ends with ``…sha256=<hex>``; entries beyond the count are
  dropped in key order, and ``mlflow.omitted`` says how many, ``mlflow.omitted_sha256`` hashes them.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any

import botocore.session

_SANITIZE = re.compile(r"[^a-zA-Z0-9]+")
HASH_LENGTH = 16


@lru_cache(maxsize=None)
def _model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


@lru_cache(maxsize=None)
def limit(shape: str, member: str | None = None, side: str | None = None) -> int:
    """The ``max`` of a shape (or of its member, or of a map's key or value)."""
    found = _model().shape_for(shape)
    if member is not None:
        found = found.members[member]
    if side is not None:
        found = getattr(found, side)
    return int(found.metadata["max"])


def name_limit() -> int:
    return limit("CreateArtifactRequest", "ArtifactName")


def source_uri_limit() -> int:
    return limit("ArtifactSource", "SourceUri")


def property_count(kind: str) -> int:
    return limit("CreateArtifactRequest" if kind == "Artifact" else "CreateActionRequest", "Properties")


def property_value_limit(kind: str) -> int:
    return limit("ArtifactProperties" if kind == "Artifact" else "LineageEntityParameters", side="value")


def property_key_limit(kind: str) -> int:
    return limit("ArtifactProperties" if kind == "Artifact" else "LineageEntityParameters", side="key")


def digest(value: str, length: int = 64) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def entity_name(label: str, identity: str) -> str:
    """``mlflow-<label>-<hash of identity>``, within the name pattern and length."""
    suffix = digest(identity, HASH_LENGTH)
    room = name_limit() - len("mlflow--") - len(suffix)
    clean = _SANITIZE.sub("-", label).strip("-")[:room].strip("-") or "entity"
    return f"mlflow-{clean}-{suffix}"


def fit(value: str, maximum: int, marker: str = "…sha256=") -> str:
    """``value`` if it fits, else its head and a hash of the whole."""
    if len(value) <= maximum:
        return value
    tail = f"{marker}{digest(value)}"
    return value[: maximum - len(tail)] + tail


def source_uri(uri: str) -> tuple[str, dict[str, str]]:
    """The URI to send, and the property that keeps the full one when it was cut."""
    fitted = fit(uri, source_uri_limit(), "#sha256=")
    return fitted, ({"source_uri": uri} if fitted != uri else {})


def properties(kind: str, values: dict[str, str], pinned: tuple[str, ...] = ()) -> dict[str, str]:
    """At most the allowed number of entries, each within its length; ``pinned`` keys first."""
    key_max, value_max = property_key_limit(kind), property_value_limit(kind)
    cleaned = {fit(str(k), key_max): fit(str(v), value_max) for k, v in values.items() if v not in (None, "")}
    order = [k for k in pinned if k in cleaned] + sorted(k for k in cleaned if k not in pinned)
    room = property_count(kind)
    if len(order) <= room:
        return {k: cleaned[k] for k in order}
    kept, dropped = order[: room - 2], order[room - 2 :]
    result = {k: cleaned[k] for k in kept}
    result["mlflow.omitted"] = str(len(dropped))
    result["mlflow.omitted_sha256"] = digest("\n".join(f"{k}={cleaned[k]}" for k in dropped))
    return result

"""Values checked against botocore's request shapes before any AWS call.

botocore's own ``ParamValidator`` checks types, required members and minimums, but not maximums,
enums or patterns; AWS checks those on its side, after the suite has uploaded an archive. This
walker checks all of them, on the service model that botocore ships (so the rules are AWS's own,
as of the installed botocore): structures (required and unknown members), lists and maps (length),
strings (length, enum, pattern matched against the whole value), numbers (type and range),
booleans. It returns the first problem as ``(path, reason, allowed)``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from botocore.model import Shape


@functools.lru_cache(maxsize=8)
def service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def shape(service: str, name: str) -> Shape:
    return service_model(service).shape_for(name)


def operation_input(service: str, operation: str) -> Shape:
    return service_model(service).operation_model(operation).input_shape


def problem(value: Any, spec: Shape, path: str = "") -> tuple[str, str, str] | None:
    """The first way ``value`` breaks ``spec``: (where, why, what is allowed); None when it fits."""
    check = _CHECKS.get(spec.type_name)
    return check(value, spec, path) if check else None


def _structure(value: Any, spec: Shape, path: str) -> tuple[str, str, str] | None:
    members = spec.members
    if not isinstance(value, dict):
        return path or "value", f"it is a {type(value).__name__}, not an object", "an object with " + ", ".join(members)
    for required in spec.required_members:
        if required not in value:
            return _at(path, required), "this required member is missing", f"{required} ({members[required].type_name})"
    for key, item in value.items():
        if key not in members:
            return _at(path, key), "there is no such member", ", ".join(members)
        found = problem(item, members[key], _at(path, key))
        if found:
            return found
    return None


def _list(value: Any, spec: Shape, path: str) -> tuple[str, str, str] | None:
    if not isinstance(value, (list, tuple)):
        return path or "value", f"it is a {type(value).__name__}, not a list", f"a list of {spec.member.type_name}"
    sized = _size(len(value), spec, path, "items")
    if sized:
        return sized
    for index, item in enumerate(value):
        found = problem(item, spec.member, f"{path}[{index}]")
        if found:
            return found
    return None


def _map(value: Any, spec: Shape, path: str) -> tuple[str, str, str] | None:
    if not isinstance(value, dict):
        return path or "value", f"it is a {type(value).__name__}, not an object", "an object of names to values"
    sized = _size(len(value), spec, path, "entries")
    if sized:
        return sized
    for key, item in value.items():
        found = problem(key, spec.key, f"{path} key {key!r}") or problem(item, spec.value, _at(path, str(key)))
        if found:
            return found
    return None


def _string(value: Any, spec: Shape, path: str) -> tuple[str, str, str] | None:
    where = path or "value"
    if not isinstance(value, str):
        return where, f"{value!r} is a {type(value).__name__}, not text", "text (quote it in JSON)"
    enum = spec.metadata.get("enum")
    if enum and value not in enum:
        return where, f"{value!r} is not one of AWS's values", _shown(enum)
    sized = _size(len(value), spec, where, "characters")
    if sized:
        return sized
    pattern = spec.metadata.get("pattern")
    if pattern and not _fullmatch(pattern, value):
        return where, f"{value!r} does not match AWS's pattern", pattern
    return None


def _number(value: Any, spec: Shape, path: str) -> tuple[str, str, str] | None:
    where = path or "value"
    whole = spec.type_name in ("integer", "long")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not float(value).is_integer()):
        return where, f"{value!r} is not a {'whole ' if whole else ''}number", "a whole number" if whole else "a number"
    low, high = spec.metadata.get("min"), spec.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        return (
            where,
            f"{value!r} is out of AWS's range",
            f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}",
        )
    return None


def _boolean(value: Any, spec: Shape, path: str) -> tuple[str, str, str] | None:
    if not isinstance(value, bool):
        return path or "value", f"{value!r} is not a boolean", "true or false"
    return None


def _size(size: int, spec: Shape, where: str, unit: str) -> tuple[str, str, str] | None:
    low, high = spec.metadata.get("min"), spec.metadata.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        return (
            where or "value",
            f"it has {size} {unit}",
            f"{low or 0} to {high if high is not None else 'any number of'} {unit}",
        )
    return None


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: AWS checks it on its side
        return None


def _fullmatch(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _shown(values: list[str], most: int = 12) -> str:
    return ", ".join(values[:most]) + (f" (and {len(values) - most} more)" if len(values) > most else "")


_CHECKS = {
    "structure": _structure,
    "list": _list,
    "map": _map,
    "string": _string,
    "integer": _number,
    "long": _number,
    "float": _number,
    "double": _number,
    "boolean": _boolean,
}

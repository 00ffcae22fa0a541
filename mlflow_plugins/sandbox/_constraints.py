"""Server-side request validation from the service model, as AWS does it.

botocore checks only types, required members and minimums on the client; AWS also rejects
values over a maximum length or size, off a pattern, or outside an enum, with a
``ValidationException`` whose message reads::

    1 validation error detected: Value 'x' at 'endpointName' failed to satisfy constraint:
    Member must have length less than or equal to 63

The sandbox applies this to the operations it implements, so code tested against it meets the
same limits as on AWS.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from botocore.model import Shape


def violations(shape: Shape | None, value: Any, path: str = "") -> list[str]:
    """Every constraint that ``value`` breaks, as AWS phrases them."""
    if shape is None or value is None:
        return []
    kind = shape.type_name
    if kind == "structure":
        found: list[str] = []
        for name, member in shape.members.items():
            if isinstance(value, dict) and name in value:
                found += violations(member, value[name], _join(path, name))
        return found
    if kind == "list":
        found = _size(shape, value, path, "length")
        for index, item in enumerate(value):
            found += violations(shape.member, item, f"{path}.{index + 1}.member")
        return found
    if kind == "map":
        found = _size(shape, value, path, "length")
        for key, item in value.items():
            found += violations(shape.key, key, f"{path}.key")
            found += violations(shape.value, item, f"{path}.value")
        return found
    if kind == "string":
        return _string(shape, value, path)
    if kind in ("integer", "long", "float", "double"):
        return _number(shape, value, path)
    return []


def message(errors: list[str]) -> str:
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(errors)


def _join(path: str, name: str) -> str:
    name = name[0].lower() + name[1:]
    return f"{path}.{name}" if path else name


def _size(shape: Shape, value: Any, path: str, what: str) -> list[str]:
    meta, found = shape.metadata, []
    if "max" in meta and len(value) > meta["max"]:
        found.append(_fail(value, path, f"Member must have {what} less than or equal to {meta['max']}"))
    if "min" in meta and len(value) < meta["min"]:
        found.append(_fail(value, path, f"Member must have {what} greater than or equal to {meta['min']}"))
    return found


def _string(shape: Shape, value: str, path: str) -> list[str]:
    found = _size(shape, value, path, "length")
    if shape.enum and value not in shape.enum:
        found.append(_fail(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"))
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    if compiled is not None and not compiled.fullmatch(value):
        found.append(_fail(value, path, f"Member must satisfy regular expression pattern: {pattern}"))
    return found


def _number(shape: Shape, value: float, path: str) -> list[str]:
    meta, found = shape.metadata, []
    if "max" in meta and value > meta["max"]:
        found.append(_fail(value, path, f"Member must have value less than or equal to {meta['max']}"))
    if "min" in meta and value < meta["min"]:
        found.append(_fail(value, path, f"Member must have value greater than or equal to {meta['min']}"))
    return found


def _fail(value: Any, path: str, rule: str) -> str:
    return f"Value '{value}' at '{path}' failed to satisfy constraint: {rule}"


# AWS patterns use Java's Unicode classes; these are their nearest Python equivalents (\w also
# admits digits and "_", so a check may accept a little more than AWS, never less).
_UNICODE_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\d", r"\p{Z}": r"\s", r"\p{M}": r"\w"}


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """The pattern compiled for Python, or ``None`` when it cannot be (then it is not checked)."""
    for java, python in _UNICODE_CLASSES.items():
        pattern = pattern.replace(java, python)
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None

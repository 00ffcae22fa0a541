"""The undo journal of one operation: every resource it creates is written down, and on a
failure undone in reverse order. What could not be undone is reported, never hidden: the
message then names it, instead of claiming that nothing was left behind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

log = logging.getLogger("mlflow_plugins.deploy")


class Journal:
    def __init__(
        self,
        undoers: Mapping[str, Callable[[str], None]],
        deployment: str = "",
        names: Mapping[str, Callable[[str], str]] | None = None,
    ) -> None:
        self.undoers = undoers
        self.deployment = deployment
        self.names = dict(names or {})  # how a message names a step's resource, where its key is not the name
        self.steps: list[tuple[str, str]] = []

    def add(self, kind: str, resource: str) -> None:
        if kind not in self.undoers:
            raise KeyError(f"no undo for {kind!r}; known: {', '.join(self.undoers)}")
        self.steps.append((kind, resource))

    def __contains__(self, kind: str) -> bool:
        return any(k == kind for k, _ in self.steps)

    def undo(self) -> list[str]:
        """Undo every step, newest first, going on past failures; what is left, as ``kind resource``."""
        left = []
        for kind, resource in reversed(self.steps):
            if not resource:
                continue
            try:
                self.undoers[kind](resource)
            except Exception as error:  # noqa: BLE001 - reported, and the cleanup goes on
                log.warning("%s: could not delete %s %s: %s", self.deployment, kind, resource, error)
                left.append(f"{kind} {self.names.get(kind, str)(resource)} ({_reason(error)})")
        self.steps.clear()
        return left


def attempt(what: str, step: Callable[[], object]) -> list[str]:
    """Run one step of a cleanup that goes on past failures: ``[]``, or ``["what (error)"]``."""
    try:
        step()
    except Exception as error:  # noqa: BLE001 - reported in the command's message, and the rest still runs
        log.warning("could not finish %s: %s", what, error)
        return [f"{what} ({type(error).__name__}: {error})"]
    return []


def incomplete(
    detail: str, left: list[str], fix: str = "Run delete again (it collects what is left), or delete them by hand."
) -> Exception:
    """The error of a delete that got past its point of no return but left ``left``."""
    from mlflow_plugins.errors import AwsCallFailed

    return AwsCallFailed(operation="delete", code="Incomplete", detail=f"{detail}; left: {'; '.join(left)}", fix=fix)


def _reason(error: Exception) -> str:
    """The call and the code of a botocore error (``DeleteModel: AccessDeniedException``), else its text."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{getattr(error, 'operation_name', 'the call')} failed with {response['Error'].get('Code')}"
    return f"{type(error).__name__}: {error}"


def outcome(left: list[str], unchanged: str, rerun: str) -> str:
    """The true end of a failed operation's message: the old state intact, or what is left."""
    if not left:
        return f"{unchanged} Check the message, then {rerun}."
    return (
        f"The cleanup could not delete: {'; '.join(left)}. Delete them by hand (or run `mlflow deployments "
        f"delete`), then {rerun}."
    )

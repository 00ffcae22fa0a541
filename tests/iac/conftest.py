"""Infrastructure as code: exported templates, linted offline (cfn-lint) and synthesized as CDK
apps; the models are the deploy tests' (two sklearn model versions)."""

from __future__ import annotations

from typing import Any

from tests.deploy.conftest import models  # noqa: F401  (a shared fixture)


def lint(template: dict[str, Any]) -> list[str]:
    """cfn-lint's errors (not warnings or informational findings) for a template."""
    import json

    import cfnlint.api

    matches = cfnlint.api.lint(json.dumps(template), regions=["us-east-1"])
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id.startswith("E")]

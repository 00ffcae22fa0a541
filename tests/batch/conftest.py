"""Batch transform tests share the deployment tests' two model versions."""

from tests.deploy.conftest import models  # noqa: F401  (a shared fixture)

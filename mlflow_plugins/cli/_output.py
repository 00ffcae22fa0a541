"""What the one-shot commands (``batch-transform``, ``export``) share: their progress on stderr."""

from __future__ import annotations

import logging
import sys


def log_to_stderr() -> None:
    """The ``mlflow_plugins`` progress lines on stderr, unless the application set up logging."""
    logger = logging.getLogger("mlflow_plugins")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)

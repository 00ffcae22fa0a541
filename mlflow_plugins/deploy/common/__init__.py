"""What every deployment target shares: archives (content-addressed uploads), configuration keys
and botocore shape checks, the suite's tags, S3 URIs, the serving image, the undo journal,
progress and model provenance. Target packages import these modules; nothing here imports a
target."""

from mlflow_plugins.deploy.common import (
    archives,
    images,
    journal,
    keys,
    labels,
    origin,
    progress,
    s3uri,
    scaling,
    shapes,
)

__all__ = ["archives", "images", "journal", "keys", "labels", "origin", "progress", "s3uri", "scaling", "shapes"]

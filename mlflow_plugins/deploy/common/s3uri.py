"""S3 URIs: split, and the deletions every target needs (one object, or a whole prefix)."""

from __future__ import annotations

from typing import Any


def split(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); ("", "") for anything else."""
    if not uri.startswith("s3://"):
        return "", ""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def delete_object(s3: Any, uri: str) -> None:
    bucket, key = split(uri)
    s3.delete_object(Bucket=bucket, Key=key)


def delete_prefix(s3: Any, uri: str) -> list[str]:
    """Every object under the prefix, 1,000 a request (DeleteObjects' limit); the keys deleted."""
    bucket, prefix = split(uri)
    gone: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            gone.extend(k["Key"] for k in keys)
    return gone

"""Model archives: a model directory as the ``model.tar.gz`` that SageMaker unpacks.

Archives are deterministic (entries sorted, times and owners zeroed, no gzip timestamp), so the
same model bytes always give the same archive, and so the same digest: a content address.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path


def model_archive(model_dir: str | Path) -> bytes:
    """The model directory's files at the archive root, as SageMaker expects them."""
    root = Path(model_dir)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as zipped:
        zipped.write(raw.getvalue())
    return out.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

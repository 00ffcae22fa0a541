"""Model archives are deterministic (content-addressed) and unpack to the model directory."""

from __future__ import annotations

import io
import os
import tarfile

from mlflow_plugins.packaging import digest, model_archive


def test_the_same_files_give_the_same_bytes_whatever_their_times(tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 100)
    first = model_archive(model)
    os.utime(model / "MLmodel", (1, 1))
    assert model_archive(model) == first
    (model / "MLmodel").write_text("flavors: {python_function: {}}\n")
    assert digest(model_archive(model)) != digest(first)
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getnames() == ["MLmodel", "sub/weights.bin"]
        assert tar.extractfile("sub/weights.bin").read() == b"\x00\x01" * 100

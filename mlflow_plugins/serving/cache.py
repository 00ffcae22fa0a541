"""The models one worker holds in memory: least recently used first out, under two limits.

The limits are a count (``max_models``) and a memory budget. A model's footprint is its artifact
size on disk: deterministic, and close to the in-memory size for tree and linear models (a model
that expands much when loaded deserves a smaller budget).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from mlflow_plugins.errors import InsufficientMemory
from mlflow_plugins.serving.model import ServedModel, directory_bytes

log = logging.getLogger(__name__)
MB = 2**20


class ModelCache:
    def __init__(self, max_models: int, budget_bytes: int,
                 loader: Callable[[str], ServedModel] = ServedModel) -> None:
        self.max_models = max_models
        self.budget_bytes = budget_bytes
        self.loader = loader
        self.models: OrderedDict[str, ServedModel] = OrderedDict()
        self.evictions = 0

    @property
    def used_bytes(self) -> int:
        return sum(m.size_bytes for m in self.models.values())

    def get(self, name: str) -> ServedModel | None:
        model = self.models.get(name)
        if model is not None:
            self.models.move_to_end(name)
        return model

    def check_fits(self, name: str, url: str) -> int:
        size = directory_bytes(url)
        if size > self.budget_bytes:
            raise InsufficientMemory(name=name, needed_mb=size / MB, budget_mb=self.budget_bytes / MB)
        return size

    def load(self, name: str, url: str) -> ServedModel:
        size = self.check_fits(name, url)
        while self.models and (len(self.models) >= self.max_models or self.used_bytes + size > self.budget_bytes):
            evicted, _ = self.models.popitem(last=False)
            self.evictions += 1
            log.info("evicted model %s to make room for %s", evicted, name)
        model = self.loader(url)
        self.models[name] = model
        return model

    def drop(self, name: str) -> None:
        self.models.pop(name, None)

    def keep_only(self, names: set[str]) -> None:
        for name in [n for n in self.models if n not in names]:
            self.drop(name)

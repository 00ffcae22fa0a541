"""The models one worker holds in memory: least recently used first out, under two limits.

The limits are a count (``max_models``) and a memory budget. A model's footprint is its artifact
size on disk: deterministic, and close to the in-memory size for tree and linear models (a model
that expands much when loaded deserves a smaller budget).

Each model is held under its name *and* the load id the registry gave it, so a model that was
unloaded and loaded again (perhaps from another URL) is never answered by the copy loaded before.
The cache is shared by the worker's threads (the event loop, the prediction thread, the loader):
a lock guards its bookkeeping, never a model load itself.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping

from mlflow_plugins.errors import InsufficientMemory
from mlflow_plugins.serving.model import ServedModel, directory_bytes
from mlflow_plugins.serving.registry import Entry

log = logging.getLogger(__name__)
MB = 2**20


class ModelCache:
    def __init__(self, max_models: int, budget_bytes: int, loader: Callable[[str], ServedModel] = ServedModel) -> None:
        self.max_models = max_models
        self.budget_bytes = budget_bytes
        self.loader = loader
        self.models: OrderedDict[str, tuple[int, ServedModel]] = OrderedDict()
        self.evictions = 0
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        return sum(model.size_bytes for _, model in list(self.models.values()))

    def names(self) -> list[str]:
        with self._lock:
            return list(self.models)

    def holds(self, name: str, load_id: int) -> bool:
        with self._lock:
            held = self.models.get(name)
            return held is not None and held[0] == load_id

    def get(self, name: str, load_id: int) -> ServedModel | None:
        with self._lock:
            held = self.models.get(name)
            if held is None or held[0] != load_id:
                return None
            self.models.move_to_end(name)
            return held[1]

    def check_fits(self, name: str, url: str) -> int:
        size = directory_bytes(url)
        if size > self.budget_bytes:
            raise InsufficientMemory(name=name, needed_mb=size / MB, budget_mb=self.budget_bytes / MB)
        return size

    def load(self, name: str, entry: Entry, current: Callable[[], Mapping[str, Entry]]) -> ServedModel:
        """Load ``entry`` and hold it, unless ``current()`` no longer lists it once it is loaded
        (it was unloaded or reloaded meanwhile: the caller gets the model, the cache keeps nothing)."""
        size = self.check_fits(name, entry.url)
        with self._lock:
            self.models.pop(name, None)
            while self.models and (len(self.models) >= self.max_models or self.used_bytes + size > self.budget_bytes):
                evicted, _ = self.models.popitem(last=False)
                self.evictions += 1
                log.info("evicted model %s to make room for %s", evicted, name)
        model = self.loader(entry.url)
        with self._lock:
            if current().get(name) == entry:
                self.models[name] = (entry.load_id, model)
        return model

    def sync(self, current: Mapping[str, Entry]) -> list[str]:
        """Drop every model that is no longer loaded as it is held; returns their names."""
        with self._lock:
            stale = [
                n for n, (load_id, _) in self.models.items() if current.get(n) is None or current[n].load_id != load_id
            ]
            for name in stale:
                del self.models[name]
            return stale

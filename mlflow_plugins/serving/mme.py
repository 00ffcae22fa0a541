"""The SageMaker multi-model contract
(https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html):

======================================  ==========================================================
``GET /ping``                           200 while the server runs, with this worker's id, resident
                                        model and eviction counts
``POST /models``                        ``{"model_name", "url"}``: load; 409 if loaded, 507 if it
                                        cannot fit the memory budget
``GET /models[?next_page_token=N]``     ``{"models": [{"modelName", "modelUrl"}], "nextPageToken"}``
``GET /models/{name}``                  one model; 404 if not loaded
``DELETE /models/{name}``               unload; 404 if not loaded
``POST /models/{name}/invoke``          predict, as ``/invocations``; 404 if not loaded
======================================  ==========================================================

A model loaded through one worker is loaded by every other worker on its first invoke there.
Each model in a listing also says whether this worker holds it in memory (``resident``): a
worker evicts the least recently used model to stay within ``--max-models`` and the memory
budget, and loads it again, transparently, when it is next invoked.

With several workers, a load, unload or reload is seen by all of them before the call returns:
the registry is changed first, then every other worker is told (:mod:`.peers`) and drops any
copy of a model it no longer holds as loaded, and answers before the call does. Independently,
each invoke checks the model's load id against the registry, so even a worker that could not be
told never answers from a model that was unloaded or replaced.

Lanes (see :mod:`.http`): ``/ping`` and the listings are answered on the event loop; loads and
unloads run on the loader thread; invokes on the prediction thread. None waits for another.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import parse_qs, unquote

from mlflow_plugins.errors import BadRequest, ModelAlreadyLoaded, ModelLoadFailed, ModelNotFound, ServingError
from mlflow_plugins.serving.app import SerialApp, error_response, not_found
from mlflow_plugins.serving.cache import ModelCache
from mlflow_plugins.serving.http import ADMIN, NOW, WORK, Request, Response
from mlflow_plugins.serving.model import ServedModel, invoke
from mlflow_plugins.serving.peers import Peers
from mlflow_plugins.serving.registry import Entry, SharedRegistry

log = logging.getLogger(__name__)
PAGE_SIZE = 100


def _json(status: int, body: Any) -> Response:
    return Response(status, json.dumps(body).encode())


def _parts(request: Request) -> list[str]:
    return [unquote(p) for p in request.path.strip("/").split("/")]


class MultiModelApp(SerialApp):
    ROUTES = (
        "GET /ping, GET /models, POST /models, GET /models/{name}, DELETE /models/{name}, POST /models/{name}/invoke"
    )

    def __init__(self, registry: SharedRegistry, cache: ModelCache, timeout: float | None) -> None:
        self.registry = registry
        self.cache = cache
        self.timeout = timeout
        self.peers = Peers(registry.path.parent / "peers", self._sync)

    async def on_loop_start(self) -> None:
        await self.peers.listen()

    async def on_loop_stop(self) -> None:
        await self.peers.close()

    def lane(self, request: Request) -> str:
        parts, method = _parts(request), request.method
        if parts[0] != "models" or method == "GET":
            return NOW
        if len(parts) == 3 and parts[2] == "invoke":
            return WORK
        return ADMIN

    def __call__(self, request: Request) -> Response:
        try:
            return self._route(request)
        except Exception as error:
            return error_response(error)

    def _sync(self) -> list[str]:
        dropped = self.cache.sync(self.registry.entries())
        if dropped:
            log.info("worker %s dropped unloaded or replaced models: %s", os.getpid(), ", ".join(dropped))
        return dropped

    def _route(self, request: Request) -> Response:
        parts = _parts(request)
        method = request.method
        if parts == ["ping"] and method == "GET":
            self._sync()
            return _json(
                200,
                {
                    "status": "healthy",
                    "models": len(self.registry.entries()),
                    "resident": len(self.cache.names()),
                    "evictions": self.cache.evictions,
                    "worker": os.getpid(),
                },
            )
        if parts[0] != "models":
            return not_found(request, self.ROUTES, ("GET",) if parts == ["ping"] else ())
        if len(parts) == 3 and parts[2] == "invoke" and method == "POST":
            return invoke(self._resident(parts[1]), request, self.timeout)
        self._sync()
        if len(parts) == 1 and method == "GET":
            return self._list(request.query)
        if len(parts) == 1 and method == "POST":
            return self._load(request.body)
        if len(parts) == 2 and method == "GET":
            return _json(200, self._describe(parts[1]))
        if len(parts) == 2 and method == "DELETE":
            return self._unload(parts[1])
        allowed = {1: ("GET", "POST"), 2: ("GET", "DELETE")}.get(len(parts), ())
        if len(parts) == 3 and parts[2] == "invoke":
            allowed = ("POST",)
        return not_found(request, self.ROUTES, allowed)

    def _list(self, query: str) -> Response:
        names = sorted(self.registry.entries())
        try:
            start = int(parse_qs(query).get("next_page_token", ["0"])[0])
        except ValueError:
            raise BadRequest(detail="next_page_token must be a token from a previous GET /models.") from None
        body: dict[str, Any] = {"models": [self._describe(n) for n in names[start : start + PAGE_SIZE]]}
        if start + PAGE_SIZE < len(names):
            body["nextPageToken"] = str(start + PAGE_SIZE)
        return _json(200, body)

    def _describe(self, name: str) -> dict[str, Any]:
        entry = self._entry(name)
        return {"modelName": name, "modelUrl": entry.url, "resident": self.cache.holds(name, entry.load_id)}

    def _load(self, body: bytes) -> Response:
        request = _load_request(body)
        name, url = request["model_name"], request["url"]
        if not os.path.isdir(url):
            raise BadRequest(
                detail=f"url {url!r} is not a directory on this host. "
                "Send the directory that holds the model's MLmodel file."
            )
        self.cache.check_fits(name, url)
        entry, added = self.registry.add(name, url)
        if not added:
            raise ModelAlreadyLoaded(name=name, url=entry.url)
        try:
            self._load_here(name, entry)
        except ServingError:
            self.registry.remove(name, entry.load_id)
            raise
        finally:
            self.peers.tell_all()  # any copy of an earlier load of this name is dropped everywhere
        return _json(200, {"modelName": name, "modelUrl": url})

    def _unload(self, name: str) -> Response:
        if not self.registry.remove(name):
            raise self._missing(name)
        self._sync()
        self.peers.tell_all()
        return _json(200, {"modelName": name, "status": "unloaded"})

    def _resident(self, name: str) -> ServedModel:
        entry = self._entry(name)
        model = self.cache.get(name, entry.load_id)
        return model if model is not None else self._load_here(name, entry)

    def _load_here(self, name: str, entry: Entry) -> ServedModel:
        try:
            return self.cache.load(name, entry, self.registry.entries)
        except ServingError:
            raise
        except Exception as error:
            log.exception("model %s failed to load from %s", name, entry.url)
            raise ModelLoadFailed(name=name, url=entry.url, reason=f"{type(error).__name__}: {error}") from None

    def _entry(self, name: str) -> Entry:
        entry = self.registry.entries().get(name)
        if entry is None:
            raise self._missing(name)
        return entry

    def _missing(self, name: str) -> ModelNotFound:
        loaded = sorted(self.registry.entries())
        shown = ", ".join(loaded[:10]) + (f" and {len(loaded) - 10} more" if len(loaded) > 10 else "")
        return ModelNotFound(name=name, loaded=shown or "none")


def _load_request(body: bytes) -> dict[str, str]:
    try:
        request = json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        raise BadRequest(detail=f"POST /models needs a JSON body: {error.msg}.") from None
    fields = ("model_name", "url")
    if not isinstance(request, dict) or not all(isinstance(request.get(k), str) and request.get(k) for k in fields):
        raise BadRequest(detail='POST /models needs {"model_name": "...", "url": "/opt/ml/models/<name>/model"}.')
    return request

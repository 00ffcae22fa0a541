"""The SageMaker multi-model contract
(https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html):

======================================  ==========================================================
``GET /ping``                           200 while the server runs, with this worker's resident model
                                        and eviction counts
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
from mlflow_plugins.serving.http import Request, Response
from mlflow_plugins.serving.model import ServedModel, invoke
from mlflow_plugins.serving.registry import SharedRegistry

log = logging.getLogger(__name__)
PAGE_SIZE = 100


def _json(status: int, body: Any) -> Response:
    return Response(status, json.dumps(body).encode())


class MultiModelApp(SerialApp):
    ROUTES = ("GET /ping, GET /models, POST /models, GET /models/{name}, DELETE /models/{name}, "
              "POST /models/{name}/invoke")

    def __init__(self, registry: SharedRegistry, cache: ModelCache, timeout: float | None) -> None:
        self.registry = registry
        self.cache = cache
        self.timeout = timeout

    def __call__(self, request: Request) -> Response:
        try:
            return self._route(request)
        except Exception as error:
            return error_response(error)

    def _route(self, request: Request) -> Response:
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        method = request.method
        if parts == ["ping"] and method == "GET":
            return _json(200, {"status": "healthy", "models": len(self.registry.models()),
                               "resident": len(self.cache.models), "evictions": self.cache.evictions})
        if parts[0] != "models":
            return not_found(request, self.ROUTES)
        self.cache.keep_only(set(self.registry.models()))
        if len(parts) == 1 and method == "GET":
            return self._list(request.query)
        if len(parts) == 1 and method == "POST":
            return self._load(request.body)
        if len(parts) == 2 and method == "GET":
            return _json(200, self._describe(parts[1]))
        if len(parts) == 2 and method == "DELETE":
            return self._unload(parts[1])
        if len(parts) == 3 and parts[2] == "invoke" and method == "POST":
            return invoke(self._resident(parts[1]), request, self.timeout)
        return not_found(request, self.ROUTES)

    def _list(self, query: str) -> Response:
        names = sorted(self.registry.models())
        try:
            start = int(parse_qs(query).get("next_page_token", ["0"])[0])
        except ValueError:
            raise BadRequest(detail="next_page_token must be a token from a previous GET /models.") from None
        body: dict[str, Any] = {"models": [self._describe(n) for n in names[start:start + PAGE_SIZE]]}
        if start + PAGE_SIZE < len(names):
            body["nextPageToken"] = str(start + PAGE_SIZE)
        return _json(200, body)

    def _describe(self, name: str) -> dict[str, Any]:
        url = self._url(name)
        return {"modelName": name, "modelUrl": url, "resident": name in self.cache.models}

    def _load(self, body: bytes) -> Response:
        request = _load_request(body)
        name, url = request["model_name"], request["url"]
        if not os.path.isdir(url):
            raise BadRequest(detail=f"url {url!r} is not a directory on this host. Send the directory that holds the model's MLmodel file.")
        self.cache.check_fits(name, url)
        existing = self.registry.add(name, url)
        if existing is not None:
            raise ModelAlreadyLoaded(name=name, url=existing)
        try:
            self._load_here(name, url)
        except ServingError:
            self.registry.remove(name)
            raise
        return _json(200, {"modelName": name, "modelUrl": url})

    def _unload(self, name: str) -> Response:
        if not self.registry.remove(name):
            raise self._missing(name)
        self.cache.drop(name)
        return _json(200, {"modelName": name, "status": "unloaded"})

    def _resident(self, name: str) -> ServedModel:
        model = self.cache.get(name)
        return model if model is not None else self._load_here(name, self._url(name))

    def _load_here(self, name: str, url: str) -> ServedModel:
        try:
            return self.cache.load(name, url)
        except ServingError:
            raise
        except Exception as error:
            log.exception("model %s failed to load from %s", name, url)
            raise ModelLoadFailed(name=name, url=url, reason=f"{type(error).__name__}: {error}") from None

    def _url(self, name: str) -> str:
        url = self.registry.models().get(name)
        if url is None:
            raise self._missing(name)
        return url

    def _missing(self, name: str) -> ModelNotFound:
        loaded = sorted(self.registry.models())
        shown = ", ".join(loaded[:10]) + (f" and {len(loaded) - 10} more" if len(loaded) > 10 else "")
        return ModelNotFound(name=name, loaded=shown or "none")


def _load_request(body: bytes) -> dict[str, str]:
    try:
        request = json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        raise BadRequest(detail=f"POST /models needs a JSON body: {error.msg}.") from None
    if not isinstance(request, dict) or not all(isinstance(request.get(k), str) and request.get(k) for k in ("model_name", "url")):
        raise BadRequest(detail='POST /models needs {"model_name": "...", "url": "/opt/ml/models/<name>/model"}.')
    return request
